"""`/v1/vector_stores` handlers: stores, their files, file batches, and search.

Adding files answers at once with them `in_progress`; `vectors.ingest` does the work in the
background. Counts and usage are always read from the files themselves (`store.vector_stores`,
`store.file_batches`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from starlette.responses import Response

from openresponses.api.common import (
    check_limit,
    current,
    json_response,
    project,
    read_body,
    services,
)
from openresponses.api.files import listing, missing_file
from openresponses.core.services import Services
from openresponses.errors import invalid, not_found
from openresponses.generated import openai_models as m
from openresponses.store.objects_db import Window
from openresponses.store.store_files import StoreFile
from openresponses.vectors import chunking
from openresponses.vectors.search import missing, rewrite, usable_store

Order = Literal["asc", "desc"]


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


def _missing_store(store_id: str) -> Exception:
    return missing(store_id, param="vector_store_id")


def _owner() -> str:
    """The caller's project: every handler finds the store in it before touching its files,
    batches or chunks, so another project's store does not exist for them."""
    return project(current())


async def _store(found: Services, store_id: str) -> m.VectorStoreObject:
    store = await found.objects.vector_stores.get(_owner(), store_id)
    if store is None:
        raise _missing_store(store_id)
    return store


async def _live_store(found: Services, store_id: str) -> m.VectorStoreObject:
    """A store that has not expired: searching or adding files would mark an expired store
    active, and so bring it back."""
    stores = found.objects.vector_stores
    return await usable_store(stores, _owner(), store_id, param="vector_store_id")


async def _store_file(found: Services, store_id: str, file_id: str) -> StoreFile:
    await _store(found, store_id)
    entry = await found.objects.store_files.get(store_id, file_id)
    if entry is None:
        raise not_found(
            f"No file found with id '{file_id}' in vector store '{store_id}'.",
            param="file_id",
            code="file_not_found",
        )
    return entry


async def _add_files(
    found: Services,
    store_id: str,
    entries: list[tuple[str, Any, dict[str, Any] | None]],
    batch_id: str | None = None,
) -> None:
    """Checks every file exists, records them `in_progress`, and starts their ingestion.
    Each entry is (file id, requested chunking strategy, attributes); a file named twice is
    added once, as its last entry says (adding a file the store has replaces it alike)."""
    entries = list({entry[0]: entry for entry in entries}.values())
    for file_id, _, _ in entries:
        if await found.objects.files.get(_owner(), file_id) is None:
            raise missing_file(file_id, param="file_ids")
    rows = [(file_id, chunking.strategy(chosen), attrs) for file_id, chosen, attrs in entries]
    if batch_id is not None:
        await found.objects.batches.add(_owner(), batch_id, store_id)
    await found.objects.store_files.add(_owner(), store_id, rows, batch_id)
    for file_id, _, _ in entries:
        found.ingestor.start(store_id, file_id)


def _attributes(model: Any) -> dict[str, Any] | None:
    """A request's `attributes` as plain JSON (the generated model wraps strings)."""
    value: dict[str, Any] | None = _dump(model).get("attributes")
    if value is not None and len(value) > 16:
        raise invalid("attributes may have at most 16 keys.", param="attributes")
    return value


def _window(limit: int, order: Order, after: str | None, before: str | None) -> Window:
    check_limit(limit, 100)
    return Window(limit, order, after, before)


# --- vector stores -------------------------------------------------------------------------------


async def create_vector_store() -> Response:
    req = current()
    body = await read_body(req)
    assert isinstance(body, m.CreateVectorStoreRequest)
    if body.description is not None:
        raise invalid(
            "'description' is not supported by this server.",
            param="description",
            code="unsupported_parameter",
        )
    found = services(req)
    store_id = _id("vs")
    await found.objects.vector_stores.add(
        _owner(), store_id, int(time.time()), body.name, body.metadata, body.expires_after
    )
    files: list[tuple[str, Any, dict[str, Any] | None]] = [
        (file_id, body.chunking_strategy, None) for file_id in body.file_ids or []
    ]
    if files:
        try:
            await _add_files(found, store_id, files)
        except Exception:
            await found.objects.vector_stores.delete(_owner(), store_id)
            raise
    return json_response(_dump(await _store(found, store_id)))


async def list_vector_stores(
    limit: int = 20, order: Order = "desc", after: str | None = None, before: str | None = None
) -> Response:
    page = await services(current()).objects.vector_stores.page(
        _owner(), _window(limit, order, after, before)
    )
    return listing([_dump(store) for store in page.items], page.has_more)


async def get_vector_store(vector_store_id: str) -> Response:
    return json_response(_dump(await _store(services(current()), vector_store_id)))


async def modify_vector_store(vector_store_id: str) -> Response:
    req = current()
    body = await read_body(req)
    assert isinstance(body, m.UpdateVectorStoreRequest)
    found = services(req)
    values = {
        name: _dump(body).get(name) if name == "expires_after" else getattr(body, name)
        for name in body.model_fields_set
    }
    if not await found.objects.vector_stores.update(_owner(), vector_store_id, values):
        raise _missing_store(vector_store_id)
    return json_response(_dump(await _store(found, vector_store_id)))


async def delete_vector_store(vector_store_id: str) -> Response:
    found = services(current())
    if not await found.objects.vector_stores.delete(_owner(), vector_store_id):
        raise _missing_store(vector_store_id)
    await found.ingestor.index.remove(vector_store_id, None)
    return json_response({"id": vector_store_id, "object": "vector_store.deleted", "deleted": True})


# --- files in a store ----------------------------------------------------------------------------


async def create_vector_store_file(vector_store_id: str) -> Response:
    req = current()
    body = await read_body(req)
    assert isinstance(body, m.CreateVectorStoreFileRequest)
    found = services(req)
    await _live_store(found, vector_store_id)
    entry = (body.file_id, body.chunking_strategy, _attributes(body))
    await _add_files(found, vector_store_id, [entry])
    added = await _store_file(found, vector_store_id, body.file_id)
    return json_response(_dump(added.object))


async def list_vector_store_files(
    vector_store_id: str,
    limit: int = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
    filter: str | None = None,
) -> Response:
    found = services(current())
    await _store(found, vector_store_id)
    page = await found.objects.store_files.page(
        vector_store_id, status=filter, window=_window(limit, order, after, before)
    )
    return listing([_dump(entry.object) for entry in page.items], page.has_more)


async def get_vector_store_file(vector_store_id: str, file_id: str) -> Response:
    entry = await _store_file(services(current()), vector_store_id, file_id)
    return json_response(_dump(entry.object))


async def update_vector_store_file_attributes(vector_store_id: str, file_id: str) -> Response:
    req = current()
    body = await read_body(req)
    assert isinstance(body, m.UpdateVectorStoreFileAttributesRequest)
    found = services(req)
    await _store_file(found, vector_store_id, file_id)
    attributes = _attributes(body)
    await found.objects.store_files.set_attributes(vector_store_id, file_id, attributes)
    await found.ingestor.index.set_attributes(vector_store_id, file_id, attributes)
    entry = await _store_file(found, vector_store_id, file_id)
    return json_response(_dump(entry.object))


async def delete_vector_store_file(vector_store_id: str, file_id: str) -> Response:
    found = services(current())
    await _store_file(found, vector_store_id, file_id)
    await found.objects.store_files.remove(vector_store_id, file_id)
    await found.ingestor.index.remove(vector_store_id, file_id)
    return json_response({"id": file_id, "object": "vector_store.file.deleted", "deleted": True})


async def retrieve_vector_store_file_content(vector_store_id: str, file_id: str) -> Response:
    found = services(current())
    await _store_file(found, vector_store_id, file_id)
    texts = await found.ingestor.index.texts(vector_store_id, file_id)
    return json_response(
        {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": text} for text in texts],
            "has_more": False,
            "next_page": None,
        }
    )


# --- file batches --------------------------------------------------------------------------------


async def create_vector_store_file_batch(vector_store_id: str) -> Response:
    req = current()
    batch = await read_body(req)
    assert isinstance(batch, m.CreateVectorStoreFileBatchRequest)
    body = batch.root
    found = services(req)
    await _live_store(found, vector_store_id)
    if body.file_ids and body.files:
        raise invalid(
            "Mutually exclusive parameters. Ensure you are only providing one of: 'file_ids' "
            "or 'files'.",
            param="files",
            code="mutually_exclusive_parameters",
        )
    shared = _attributes(body)
    entries: list[tuple[str, Any, dict[str, Any] | None]] = [
        (file_id, body.chunking_strategy, shared) for file_id in body.file_ids or []
    ]
    for one in body.files or []:
        own = _attributes(one)
        entries.append((one.file_id, one.chunking_strategy or body.chunking_strategy, own))
    if not entries:
        raise invalid("Give 'file_ids' or 'files'.", param="file_ids")
    batch_id = _id("vsfb")
    await _add_files(found, vector_store_id, entries, batch_id)
    return await _batch(found, vector_store_id, batch_id)


async def _batch(found: Services, store_id: str, batch_id: str) -> Response:
    await _store(found, store_id)
    batch = await found.objects.batches.get(store_id, batch_id)
    if batch is None:
        raise not_found(
            f"No file batch found with id '{batch_id}' in vector store '{store_id}'.",
            param="batch_id",
            code="batch_not_found",
        )
    return json_response(_dump(batch))


async def get_vector_store_file_batch(vector_store_id: str, batch_id: str) -> Response:
    return await _batch(services(current()), vector_store_id, batch_id)


async def cancel_vector_store_file_batch(vector_store_id: str, batch_id: str) -> Response:
    found = services(current())
    await _store(found, vector_store_id)
    await found.objects.batches.cancel(vector_store_id, batch_id)
    return await _batch(found, vector_store_id, batch_id)


async def list_files_in_vector_store_batch(
    vector_store_id: str,
    batch_id: str,
    limit: int = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
    filter: str | None = None,
) -> Response:
    found = services(current())
    await _batch(found, vector_store_id, batch_id)
    page = await found.objects.store_files.page(
        vector_store_id,
        batch_id=batch_id,
        status=filter,
        window=_window(limit, order, after, before),
    )
    return listing([_dump(entry.object) for entry in page.items], page.has_more)


# --- search --------------------------------------------------------------------------------------


async def search_vector_store(vector_store_id: str) -> Response:
    req = current()
    body = await read_body(req)
    assert isinstance(body, m.VectorStoreSearchRequest)
    found = services(req)
    await _live_store(found, vector_store_id)
    raw = body.query.root if hasattr(body.query, "root") else body.query
    queries = [raw] if isinstance(raw, str) else [str(q) for q in raw]
    if body.rewrite_query:
        queries = [rewrite(query) for query in queries]
    hits = await found.searcher.search(
        [vector_store_id],
        queries,
        max_num_results=body.max_num_results or 10,
        filters=body.filters,
        ranking_options=body.ranking_options,
    )
    await found.searcher.mark_active([vector_store_id])
    return json_response(
        {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [
                {
                    "file_id": hit.file_id,
                    "filename": hit.filename,
                    "score": hit.score,
                    "attributes": hit.attributes,
                    "content": [{"type": "text", "text": hit.text}],
                }
                for hit in hits
            ],
            "has_more": False,
            "next_page": None,
        }
    )
