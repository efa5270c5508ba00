"""`/v1/vector_stores` through the official SDK: stores, their files and batches, background
ingestion, search with filters and ranking, and retrieval quality on a small real corpus."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import Server, server_env
from tests.upstream import ScriptedUpstream

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def upload(client: openai.OpenAI, name: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id


def settled(client: openai.OpenAI, store_id: str) -> Any:
    """The store once no file is in progress."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        store = client.vector_stores.retrieve(store_id)
        if store.file_counts.in_progress == 0:
            return store
        time.sleep(0.1)
    raise AssertionError(f"{store_id} still has files in progress")


def store_with(client: openai.OpenAI, files: dict[str, str | bytes], **fields: Any) -> str:
    ids = [upload(client, name, text) for name, text in files.items()]
    store = client.vector_stores.create(name="test", file_ids=ids, **fields)
    return settled(client, store.id).id


def start_expiring_server(upstream: ScriptedUpstream, data_dir: Path) -> Server:
    """A server on which a day of `expires_after` lasts a second, so expiry can be seen."""
    env = server_env(upstream, OPENRESPONSES_EXPIRY_DAY_SECONDS="1")
    return Server(data_dir, env).start()


def expired_store(client: openai.OpenAI, files: dict[str, str | bytes]) -> Any:
    """A store of these files, once it has expired (a one-day policy on a one-second day)."""
    store_id = store_with(client, files, expires_after={"anchor": "last_active_at", "days": 1})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        store = client.vector_stores.retrieve(store_id)
        if store.status == "expired":
            return store
        time.sleep(0.2)
    raise AssertionError(f"{store_id} did not expire")


def expired_error(store_id: str, param: str) -> dict[str, Any]:
    return {
        "message": f"Vector store '{store_id}' has expired; create a new vector store with its "
        "files.",
        "type": "invalid_request_error",
        "param": param,
        "code": "vector_store_expired",
    }


@pytest.fixture(scope="module")
def expiring(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_expiring_server(upstream, tmp_path_factory.mktemp("expiring"))
    yield server
    server.stop()


def test_a_store_is_created_retrieved_modified_listed_and_deleted(client: openai.OpenAI) -> None:
    created = client.vector_stores.create(
        name="notes",
        metadata={"team": "docs"},
        expires_after={"anchor": "last_active_at", "days": 7},
    )

    assert created.model_dump() == {
        "id": created.id,
        "object": "vector_store",
        "created_at": created.created_at,
        "name": "notes",
        "usage_bytes": 0,
        "file_counts": {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0},
        "status": "completed",
        "expires_after": {"anchor": "last_active_at", "days": 7},
        "expires_at": created.last_active_at + 7 * 86400,  # type: ignore[operator]
        "last_active_at": created.last_active_at,
        "metadata": {"team": "docs"},
    }
    assert client.vector_stores.retrieve(created.id) == created
    modified = client.vector_stores.update(created.id, name="renamed", metadata={"team": "x"})
    assert (modified.name, modified.metadata) == ("renamed", {"team": "x"})
    assert created.id in [store.id for store in client.vector_stores.list(limit=100)]

    deleted = client.vector_stores.delete(created.id)

    assert deleted.model_dump() == {
        "id": created.id,
        "object": "vector_store.deleted",
        "deleted": True,
    }
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(created.id)


def test_stores_page_after_and_before_a_cursor(client: openai.OpenAI) -> None:
    ids = [client.vector_stores.create(name=f"page-{n}").id for n in range(4)]

    after = client.vector_stores.list(order="asc", after=ids[0], limit=2)
    before = client.vector_stores.list(order="asc", before=ids[3], limit=2)
    newest_first = client.vector_stores.list(order="desc", before=ids[0], limit=2)

    assert [s.id for s in after.data] == ids[1:3]
    assert after.has_more is True
    assert [s.id for s in before.data] == ids[1:3]
    assert before.has_more is True
    assert [s.id for s in newest_first.data] == [ids[2], ids[1]]


def test_ingestion_completes_or_fails_per_file_and_counts_stay_true(
    client: openai.OpenAI,
) -> None:
    store_id = store_with(
        client,
        {"a.md": "# A\nalpha text", "b.txt": "beta text", "c.exe": b"MZ\x90\x00"},
    )

    store = client.vector_stores.retrieve(store_id)
    files = list(client.vector_stores.files.list(store_id))
    failed = list(client.vector_stores.files.list(store_id, filter="failed"))
    assert store.status == "completed"
    assert store.file_counts.model_dump() == {
        "in_progress": 0,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "total": 3,
    }
    assert store.usage_bytes == sum(f.usage_bytes for f in files) > 0
    assert len(failed) == 1
    assert failed[0].usage_bytes == 0
    assert failed[0].last_error is not None
    assert failed[0].last_error.model_dump() == {
        "code": "unsupported_file",
        "message": "Files of type '.exe' are not supported for search: c.exe. Supported: "
        "text, Markdown, HTML, JSON, PDF and source code.",
    }
    hits = client.vector_stores.search(store_id, query="beta").data
    assert [hit.filename for hit in hits][:1] == ["b.txt"]


def test_search_returns_file_score_attributes_and_chunk_text(client: openai.OpenAI) -> None:
    store_id = client.vector_stores.create(name="s").id
    router = upload(client, "router.md", "To reset the admin password, hold reset for 10 s.")
    plants = upload(client, "plants.txt", "Photosynthesis turns sunlight into sugar in leaves.")
    client.vector_stores.files.create(store_id, file_id=router, attributes={"kind": "manual"})
    client.vector_stores.files.create(store_id, file_id=plants, attributes={"kind": "biology"})
    settled(client, store_id)

    page = client.vector_stores.search(store_id, query="how do I reset the password?")

    assert page.search_query == ["how do I reset the password?"]
    assert page.has_more is False
    first = page.data[0]
    assert first.model_dump() == {
        "file_id": router,
        "filename": "router.md",
        "score": 1.0,  # first by both vector and keyword rank
        "attributes": {"kind": "manual"},
        "content": [{"type": "text", "text": "To reset the admin password, hold reset for 10 s."}],
    }
    assert [hit.file_id for hit in page.data] == [router, plants]
    assert 0 < page.data[1].score < 1


def _filtered(client: openai.OpenAI, store_id: str, filters: Any) -> set[str]:
    page = client.vector_stores.search(store_id, query="document", filters=filters)
    return {hit.filename for hit in page.data}


def test_filters_select_files_by_attributes(client: openai.OpenAI) -> None:
    store_id = client.vector_stores.create(name="f").id
    for name, attributes in {
        "a.txt": {"year": 2021, "lang": "en", "draft": False},
        "b.txt": {"year": 2023, "lang": "fr", "draft": True},
        "c.txt": {"year": 2024, "lang": "en"},
    }.items():
        file_id = upload(client, name, f"document {name}")
        client.vector_stores.files.create(store_id, file_id=file_id, attributes=attributes)
    settled(client, store_id)

    assert _filtered(client, store_id, {"type": "eq", "key": "lang", "value": "en"}) == {
        "a.txt",
        "c.txt",
    }
    assert _filtered(client, store_id, {"type": "gte", "key": "year", "value": 2023}) == {
        "b.txt",
        "c.txt",
    }
    assert _filtered(client, store_id, {"type": "in", "key": "lang", "value": ["fr", "de"]}) == {
        "b.txt"
    }
    assert _filtered(client, store_id, {"type": "ne", "key": "draft", "value": True}) == {
        "a.txt",
        "c.txt",
    }
    compound = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "lang", "value": "fr"},
            {
                "type": "and",
                "filters": [
                    {"type": "lt", "key": "year", "value": 2022},
                    {"type": "nin", "key": "lang", "value": ["de"]},
                ],
            },
        ],
    }
    assert _filtered(client, store_id, compound) == {"a.txt", "b.txt"}


def test_updated_attributes_take_effect_in_search(client: openai.OpenAI) -> None:
    store_id = store_with(client, {"a.txt": "document a"})
    file_id = next(iter(client.vector_stores.files.list(store_id))).id
    only_new = {"type": "eq", "key": "state", "value": "new"}
    assert _filtered(client, store_id, only_new) == set()

    updated = client.vector_stores.files.update(
        file_id, vector_store_id=store_id, attributes={"state": "new"}
    )

    assert updated.attributes == {"state": "new"}
    assert _filtered(client, store_id, only_new) == {"a.txt"}


def test_a_deleted_file_leaves_the_search(client: openai.OpenAI) -> None:
    store_id = store_with(client, {"keep.txt": "apples and pears", "drop.txt": "apples only"})
    by_name = {f.id: f for f in client.files.list(purpose="assistants")}
    drop = next(i for i in by_name if by_name[i].filename == "drop.txt")
    keep = next(f.id for f in client.vector_stores.files.list(store_id) if f.id != drop)

    client.files.delete(drop)
    assert {h.filename for h in client.vector_stores.search(store_id, query="apples").data} == {
        "keep.txt"
    }
    deleted = client.vector_stores.files.delete(keep, vector_store_id=store_id)

    assert deleted.model_dump() == {
        "id": keep,
        "object": "vector_store.file.deleted",
        "deleted": True,
    }
    assert client.vector_stores.search(store_id, query="apples").data == []
    assert client.vector_stores.retrieve(store_id).file_counts.total == 0


def test_static_chunking_is_reported_and_content_is_the_overlapping_chunks(
    client: openai.OpenAI,
) -> None:
    text = " ".join(f"word{n}" for n in range(400))
    store_id = store_with(
        client,
        {"long.txt": text},
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50},
        },
    )
    entry = next(iter(client.vector_stores.files.list(store_id)))

    content = client.vector_stores.files.content(file_id=entry.id, vector_store_id=store_id)

    assert entry.chunking_strategy is not None
    assert entry.chunking_strategy.model_dump() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50},
    }
    chunks = [part.text for part in content.data]
    assert len(chunks) > 2
    assert chunks[0].startswith("word0 ")
    assert chunks[-1].endswith("word399")
    assert chunks[1][:20] in chunks[0]  # consecutive chunks overlap


def test_an_overlap_over_half_the_chunk_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.vector_stores.create(
            file_ids=[upload(client, "x.txt", "x")],
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
            },
        )

    assert caught.value.body["param"] == "chunking_strategy.static.chunk_overlap_tokens"  # type: ignore[index]


def test_a_file_batch_ingests_lists_and_reports_counts(client: openai.OpenAI) -> None:
    store_id = client.vector_stores.create(name="b").id
    ids = [upload(client, f"{n}.txt", f"batch file {n}") for n in range(3)]

    batch = client.vector_stores.file_batches.create(store_id, file_ids=ids)
    settled(client, store_id)
    done = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store_id)
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store_id)

    assert batch.id.startswith("vsfb_")
    assert batch.object == "vector_store.files_batch"
    assert done.status == "completed"
    assert done.file_counts.model_dump() == {
        "in_progress": 0,
        "completed": 3,
        "failed": 0,
        "cancelled": 0,
        "total": 3,
    }
    assert sorted(f.id for f in listed) == sorted(ids)


def test_a_batch_with_both_file_ids_and_files_is_a_400(client: openai.OpenAI) -> None:
    store_id = client.vector_stores.create(name="both").id
    file_id = upload(client, "both.txt", "both")

    with pytest.raises(openai.BadRequestError) as caught:
        client.vector_stores.file_batches.create(
            store_id, file_ids=[file_id], files=[{"file_id": file_id}]
        )

    assert caught.value.body == {
        "message": "Mutually exclusive parameters. Ensure you are only providing one of: "
        "'file_ids' or 'files'.",
        "type": "invalid_request_error",
        "param": "files",
        "code": "mutually_exclusive_parameters",
    }


def test_a_file_named_twice_in_a_batch_is_added_once(client: openai.OpenAI) -> None:
    store_id = client.vector_stores.create(name="twice").id
    file_id = upload(client, "twice.txt", "twice")

    batch = client.vector_stores.file_batches.create(
        store_id,
        files=[
            {"file_id": file_id, "attributes": {"take": "first"}},
            {"file_id": file_id, "attributes": {"take": "last"}},
        ],
    )
    settled(client, store_id)

    assert batch.file_counts.total == 1
    listed = client.vector_stores.files.list(store_id)
    assert [(f.id, f.attributes) for f in listed] == [(file_id, {"take": "last"})]


def test_a_cancelled_batch_is_cancelled(client: openai.OpenAI) -> None:
    store_id = client.vector_stores.create(name="c").id
    ids = [upload(client, f"{n}.txt", "some text " * 50) for n in range(4)]
    batch = client.vector_stores.file_batches.create(store_id, file_ids=ids)

    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store_id)
    settled(client, store_id)

    assert cancelled.status == "cancelled"
    after = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store_id)
    assert after.status == "cancelled"
    counts = after.file_counts
    assert counts.completed + counts.cancelled == counts.total == 4
    assert client.vector_stores.retrieve(store_id).file_counts.cancelled == counts.cancelled


def test_unknown_ids_are_404(client: openai.OpenAI) -> None:
    store_id = client.vector_stores.create(name="u").id
    calls = [
        lambda: client.vector_stores.retrieve("vs_nope"),
        lambda: client.vector_stores.search("vs_nope", query="x"),
        lambda: client.vector_stores.files.list("vs_nope"),
        lambda: client.vector_stores.files.create(store_id, file_id="file-nope"),
        lambda: client.vector_stores.files.retrieve("file-nope", vector_store_id=store_id),
        lambda: client.vector_stores.file_batches.retrieve("vsfb_nope", vector_store_id=store_id),
        lambda: client.vector_stores.create(file_ids=["file-nope"]),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call()


def test_max_results_threshold_and_rewrite(client: openai.OpenAI) -> None:
    files = {
        "garden.txt": "tips about gardening and compost",
        "pasta.txt": "cooking fresh pasta at home",
        "cars.txt": "changing the oil of a car",
        "taxes.txt": "filing a tax return on time",
        "music.txt": "scales and chords in music theory",
    }
    store_id = store_with(client, files)

    two = client.vector_stores.search(store_id, query="gardening compost", max_num_results=2)
    strict = client.vector_stores.search(
        store_id, query="gardening compost", ranking_options={"score_threshold": 0.99}
    )
    rewritten = client.vector_stores.search(
        store_id, query="What should I know about Gardening?", rewrite_query=True
    )
    vector_only = client.vector_stores.search(
        store_id, query="gardening", ranking_options={"ranker": "none"}
    )

    assert len(two.data) == 2
    assert [(hit.filename, hit.score) for hit in strict.data] == [("garden.txt", 1.0)]
    assert rewritten.search_query == ["know about gardening"]
    assert rewritten.data[0].filename == "garden.txt"
    assert len(vector_only.data) == 5
    assert vector_only.data[0].filename == "garden.txt"
    scores = [hit.score for hit in vector_only.data]  # cosine similarity, clamped at 0
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= score < 1 for score in scores)


def _minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text`, with a correct cross-reference table."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def test_pdf_html_json_and_code_are_parsed_to_text(client: openai.OpenAI) -> None:
    files: dict[str, str | bytes] = {
        "guide.pdf": _minimal_pdf("Lighthouses guide ships at night"),
        "page.html": "<html><head><style>p{}</style><script>var x;</script></head>"
        "<body><h1>Bridges</h1><p>Suspension bridges hang from cables.</p></body></html>",
        "data.json": '{"planet": "Mars", "moons": ["Phobos", "Deimos"]}',
        "code.py": "def greet(name):\n    return f'hello {name}'\n",
        "broken.json": "{not json",
    }
    store_id = store_with(client, files)
    entries = {f.id: f for f in client.vector_stores.files.list(store_id)}
    names = {f.id: f.filename for f in client.files.list(purpose="assistants")}

    texts = {
        names[file_id]: [
            part.text
            for part in client.vector_stores.files.content(
                file_id=file_id, vector_store_id=store_id
            )
        ]
        for file_id, entry in entries.items()
        if entry.status == "completed"
    }
    assert texts == {
        "guide.pdf": ["Lighthouses guide ships at night"],
        "page.html": ["Bridges\nSuspension bridges hang from cables."],
        "data.json": ['{"planet": "Mars", "moons": ["Phobos", "Deimos"]}'],
        "code.py": ["def greet(name):\n    return f'hello {name}'\n"],
    }
    broken = next(e for e in entries.values() if e.status == "failed")
    assert broken.last_error is not None
    assert broken.last_error.code == "invalid_file"


def test_the_right_document_comes_first_for_every_question(client: openai.OpenAI) -> None:
    documents = {path.name: path.read_text(encoding="utf-8") for path in CORPUS.glob("*.md")}
    store_id = store_with(client, dict(documents.items()))
    questions = json.loads((CORPUS / "questions.json").read_text(encoding="utf-8"))

    firsts = {
        question: client.vector_stores.search(store_id, query=question).data[0].filename
        for question, _ in questions
    }

    assert firsts == {question: expected for question, expected in questions}


def test_vector_stores_work_with_the_postgresql_store(postgres_server: Server) -> None:
    client = postgres_server.client()
    store_id = store_with(client, {"pg.txt": "metadata in PostgreSQL, vectors in DuckDB"})

    hits = client.vector_stores.search(store_id, query="where do vectors live?").data

    assert client.vector_stores.retrieve(store_id).file_counts.completed == 1
    assert [hit.filename for hit in hits] == ["pg.txt"]
    assert (postgres_server.data_dir / "vectors.duckdb").exists()


def test_search_through_the_hnsw_index_finds_the_right_documents(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """With the threshold at one chunk, the index builds its HNSW graph after the first
    writes and search goes through it; a filter that leaves too few of its candidates falls
    back to exact search."""
    env = server_env(upstream, OPENRESPONSES_HNSW_THRESHOLD="1")
    server = Server(tmp_path, env).start()
    try:
        client = server.client()
        documents = {path.name: path.read_text(encoding="utf-8") for path in CORPUS.glob("*.md")}
        store_id = store_with(client, dict(documents.items()))
        chess = next(f.id for f in client.files.list() if f.filename == "chess.md")
        client.vector_stores.files.update(chess, vector_store_id=store_id, attributes={"g": 1})
        time.sleep(1.5)  # the index's background refresh (0.5 s) builds HNSW
        questions = json.loads((CORPUS / "questions.json").read_text(encoding="utf-8"))

        firsts = {
            question: client.vector_stores.search(store_id, query=question).data[0].filename
            for question, _ in questions
        }
        only_chess = client.vector_stores.search(
            store_id,
            query="Why do corals turn white?",
            filters={"type": "eq", "key": "g", "value": 1},
            ranking_options={"ranker": "none"},
        )

        assert firsts == {question: expected for question, expected in questions}
        assert [hit.filename for hit in only_chess.data] == ["chess.md"]
    finally:
        server.stop()
    # The graph was built, and saved beside the table.
    assert (tmp_path / "vectors.usearch").stat().st_size > 0


def test_a_store_past_its_expiry_reports_expired_and_its_search_is_a_400(
    expiring: Server,
) -> None:
    client = expiring.client()
    store = expired_store(client, {"tides.txt": "The moon's pull raises the tides."})

    with pytest.raises(openai.BadRequestError) as caught:
        client.vector_stores.search(store.id, query="What raises the tides?")

    assert store.model_dump() == {
        "id": store.id,
        "object": "vector_store",
        "created_at": store.created_at,
        "name": "test",
        "usage_bytes": store.usage_bytes,
        "file_counts": {"in_progress": 0, "completed": 1, "failed": 0, "cancelled": 0, "total": 1},
        "status": "expired",
        "expires_after": {"anchor": "last_active_at", "days": 1},
        "expires_at": store.last_active_at + 1,
        "last_active_at": store.last_active_at,
        "metadata": None,
    }
    assert caught.value.status_code == 400
    assert caught.value.body == expired_error(store.id, "vector_store_id")
    # The refused search did not mark the store active again.
    assert client.vector_stores.retrieve(store.id).status == "expired"


def test_files_cannot_be_added_to_an_expired_store(expiring: Server) -> None:
    client = expiring.client()
    store = expired_store(client, {"old.txt": "old notes"})
    new_file = upload(client, "new.txt", "new notes")

    with pytest.raises(openai.BadRequestError) as single:
        client.vector_stores.files.create(store.id, file_id=new_file)
    with pytest.raises(openai.BadRequestError) as batch:
        client.vector_stores.file_batches.create(store.id, file_ids=[new_file])

    assert single.value.body == expired_error(store.id, "vector_store_id")
    assert batch.value.body == expired_error(store.id, "vector_store_id")
    assert client.vector_stores.retrieve(store.id).file_counts.total == 1
