"""The write-behind journal in front of the SQL store, on a real DuckDB file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openresponses.generated import openai_models as m
from openresponses.items import new_id
from openresponses.store import duckdb_url, journal, open_store
from openresponses.store.base import StoredResponse
from openresponses.store.codec import encode
from openresponses.store.journal import JournaledStore, read_segment

P = "proj_test"
"""The project every record here belongs to."""


def _record(text: str = "hi", previous: str | None = None) -> StoredResponse:
    message = m.OutputMessage(
        id=new_id("message"),
        type="message",
        role="assistant",
        status="completed",
        content=[m.OutputTextContent(type="output_text", text=text, annotations=[], logprobs=[])],
    )
    response = m.Response(
        id=new_id("response"),
        object="response",
        created_at=1,
        status="completed",
        model="m",
        output=[message],
        error=None,
        incomplete_details=None,
        tools=[],
        tool_choice="auto",
        parallel_tool_calls=True,
        instructions=None,
        metadata={},
        temperature=1.0,
        top_p=1.0,
        previous_response_id=previous,
    )
    prompt = m.InputMessageResource(
        id=new_id("message"),
        type="message",
        role="user",
        status="completed",
        content=[m.InputTextContent(type="input_text", text=f"say {text}")],
    )
    return StoredResponse(response, [prompt], P)


async def _journaled(data_dir: Path, *, start_writer: bool = True) -> JournaledStore:
    store = await open_store(duckdb_url(data_dir), journal_dir=data_dir)
    assert isinstance(store, JournaledStore)
    if not start_writer and store._writer is not None:
        store._writer.cancel()  # imitate a process that dies before the writer applies anything
    return store


def test_saved_record_is_readable_at_once_and_after_it_is_applied(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _journaled(tmp_path)
        record = _record()
        await store.save(record)
        assert await store.get(P, record.response.id) == record
        page = await store.input_items(P, record.response.id, after=None, limit=10, order="asc")
        assert page is not None and page.items == record.input_items
        assert await store.get(P, record.response.id) == record
        await store.close()

    asyncio.run(scenario())


def test_a_save_is_in_the_journal_before_the_database_sees_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _journaled(tmp_path, start_writer=False)
        record = _record("journaled")
        await store.save(record)
        [segment] = list(tmp_path.glob("journal-*.jsonl"))
        assert read_segment(segment) == [record]

    asyncio.run(scenario())


def test_journaled_saves_are_replayed_after_a_crash(tmp_path: Path) -> None:
    record = _record("survivor")

    async def crash() -> None:
        store = await _journaled(tmp_path, start_writer=False)
        await store.save(record)
        # no close(): the process "dies" with the save only in the journal

    async def restart() -> None:
        store = await _journaled(tmp_path)
        assert await store.get(P, record.response.id) == record
        assert list(tmp_path.glob("journal-*.jsonl")) == [tmp_path / "journal-1.jsonl"]
        await store.close()

    asyncio.run(crash())
    asyncio.run(restart())
    assert list(tmp_path.glob("journal-*.jsonl")) == []


def test_a_torn_last_line_is_skipped_on_replay(tmp_path: Path) -> None:
    record = _record("whole")

    async def crash() -> None:
        store = await _journaled(tmp_path, start_writer=False)
        await store.save(record)
        [segment] = list(tmp_path.glob("journal-*.jsonl"))
        with segment.open("ab") as f:
            f.write(b'{"response": {"id": "resp_torn"')

    async def restart() -> None:
        store = await _journaled(tmp_path)
        assert await store.get(P, record.response.id) == record
        assert await store.get(P, "resp_torn") is None
        await store.close()

    asyncio.run(crash())
    asyncio.run(restart())


def test_many_concurrent_saves_are_all_applied(tmp_path: Path) -> None:
    records = [_record(str(n)) for n in range(200)]

    async def scenario() -> None:
        store = await _journaled(tmp_path)
        await asyncio.gather(*(store.save(r) for r in records))
        await store.close()
        reopened = await open_store(duckdb_url(tmp_path))
        for record in records:
            assert await reopened.get(P, record.response.id) == record
        await reopened.close()

    asyncio.run(scenario())


def test_a_later_save_of_the_same_response_wins(tmp_path: Path) -> None:
    first = _record("draft")
    final = StoredResponse(
        first.response.model_copy(update={"status": "failed"}), first.input_items, P
    )

    async def scenario() -> None:
        store = await _journaled(tmp_path)
        await store.save(first)
        await store.save(final)
        await store.close()
        reopened = await open_store(duckdb_url(tmp_path))
        stored = await reopened.get(P, first.response.id)
        assert stored is not None and stored.response.status == "failed"
        await reopened.close()

    asyncio.run(scenario())


def test_context_of_a_chain_still_in_the_journal_needs_no_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _journaled(tmp_path, start_writer=False)  # nothing is ever applied
        parent = _record("one")
        child = _record("two", previous=parent.response.id)
        await store.save(parent)
        await store.save(child)
        context = await asyncio.wait_for(store.context(P, child.response.id), 10)
        assert context == [
            *parent.input_items,
            *parent.response.output,
            *child.input_items,
            *child.response.output,
        ]

    asyncio.run(scenario())


def test_context_joins_journaled_responses_to_their_applied_ancestors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "GATHER_SECONDS", 60.0)

    async def scenario() -> None:
        store = await _journaled(tmp_path)
        root = _record("one")
        await store.save(root)
        await store.input_items(P, root.response.id, after=None, limit=1, order="asc")  # applied
        parent = _record("two", previous=root.response.id)
        child = _record("three", previous=parent.response.id)
        await store.save(parent)
        await store.save(child)
        context = await asyncio.wait_for(store.context(P, child.response.id), 10)
        assert context == [
            *root.input_items,
            *root.response.output,
            *parent.input_items,
            *parent.response.output,
            *child.input_items,
            *child.response.output,
        ]
        assert await store.context(P, new_id("response")) is None
        await store.close()

    asyncio.run(scenario())


def test_fsync_journal_still_round_trips(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await open_store(duckdb_url(tmp_path), journal_dir=tmp_path, journal_fsync=True)
        record = _record("synced")
        await store.save(record)
        await store.close()
        reopened = await open_store(duckdb_url(tmp_path))
        assert await reopened.get(P, record.response.id) == record
        await reopened.close()

    asyncio.run(scenario())


def test_saves_made_together_reach_the_database_in_one_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "GATHER_SECONDS", 60.0)

    async def scenario() -> None:
        store = await _journaled(tmp_path)
        batches: list[int] = []
        save_many = store._inner.save_many

        async def counting(records: list[StoredResponse]) -> None:
            batches.append(len(records))
            await save_many(records)

        store._inner.save_many = counting  # type: ignore[method-assign]
        records = [_record(f"n{i}") for i in range(5)]
        for record in records:
            await store.save(record)
            await asyncio.sleep(0.01)  # the writer is awake, and gathers instead of writing
        assert batches == []
        await asyncio.wait_for(store.close(), 10)  # closing cuts the gathering short
        assert batches == [5]

    asyncio.run(scenario())


def test_a_read_that_needs_the_database_cuts_the_gathering_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "GATHER_SECONDS", 60.0)

    async def scenario() -> None:
        store = await _journaled(tmp_path)
        record = _record("urgent")
        await store.save(record)
        found = await asyncio.wait_for(store.find_item(P, record.input_items[0].id), 10)
        assert found == record.input_items[0]
        await store.close()

    asyncio.run(scenario())


def _database_reads_fail(store: JournaledStore) -> None:
    async def unavailable(*args: object, **kwargs: object) -> None:
        raise AssertionError("read from the database")

    store._inner.context = unavailable  # type: ignore[method-assign]
    store._inner.get = unavailable  # type: ignore[method-assign]


def test_a_chain_applied_lately_is_read_from_memory(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _journaled(tmp_path)
        parent = _record("one")
        child = _record("two", previous=parent.response.id)
        await store.save(parent)
        await store.save(child)
        await store.input_items(P, child.response.id, after=None, limit=1, order="asc")  # applied
        _database_reads_fail(store)
        assert await store.context(P, child.response.id) == [
            *parent.input_items,
            *parent.response.output,
            *child.input_items,
            *child.response.output,
        ]
        assert await store.get(P, parent.response.id) == parent

    asyncio.run(scenario())


def test_memory_keeps_the_newest_responses_within_its_budget(tmp_path: Path) -> None:
    async def scenario() -> None:
        inner = await open_store(duckdb_url(tmp_path))
        records = [_record(f"n{i}") for i in range(3)]
        size = encode(records[0]).size()
        store = JournaledStore(inner, tmp_path / "journal", recent_bytes=2 * size)  # type: ignore[arg-type]
        await store.start()
        for record in records:
            await store.save(record)
        await store.input_items(P, records[-1].response.id, after=None, limit=1, order="asc")
        oldest, *newest = records
        assert [store._in_memory(P, r.response.id) for r in records] == [None, *newest]
        assert await store.get(P, oldest.response.id) == oldest  # from the database
        await store.close()

    asyncio.run(scenario())


def test_a_deleted_response_leaves_memory_too(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _journaled(tmp_path)
        record = _record("gone")
        await store.save(record)
        assert await store.delete(P, record.response.id)
        assert await store.get(P, record.response.id) is None
        assert await store.context(P, record.response.id) is None
        await store.close()

    asyncio.run(scenario())
