"""The SQL store on a real DuckDB file and on the PostgreSQL at 127.0.0.1:5432.

Every test runs on both databases. A PostgreSQL test gets a schema of its own (through the
URL's search_path), dropped afterwards, so tests can run in parallel and leave nothing behind.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, text

from openresponses.generated import openai_models as m
from openresponses.items import new_id
from openresponses.store import duckdb_url, open_store
from openresponses.store.base import Store, StoredResponse
from openresponses.store.codec import encode
from openresponses.store.migrations import MIGRATIONS, migrate
from openresponses.store.sql import SqlStore, create_store_engine

T = TypeVar("T")

P = "proj_test"
"""The project every record here belongs to."""


def run(call: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(call)


# --- models ----------------------------------------------------------------------------------


def user_message(text_: str) -> m.InputMessageResource:
    return m.InputMessageResource(
        id=new_id("message"),
        type="message",
        role="user",
        status="completed",
        content=[m.InputTextContent(type="input_text", text=text_)],
    )


def assistant_message(text_: str) -> m.OutputMessage:
    return m.OutputMessage(
        id=new_id("message"),
        type="message",
        role="assistant",
        status="completed",
        content=[m.OutputTextContent(type="output_text", text=text_, annotations=[], logprobs=[])],
    )


def response(
    response_id: str | None = None,
    *,
    output: list[Any] | None = None,
    previous: str | None = None,
    status: str = "completed",
    created_at: int | None = None,
    text_format: Any = None,
) -> m.Response:
    return m.Response(
        id=response_id or new_id("response"),
        object="response",
        created_at=int(time.time()) if created_at is None else created_at,
        status=status,  # type: ignore[arg-type]
        error=None,
        incomplete_details=None,
        instructions=None,
        model="test-model",
        output=[assistant_message("Hello!")] if output is None else output,
        previous_response_id=previous,
        tools=[],
        tool_choice="auto",
        parallel_tool_calls=True,
        temperature=1.0,
        top_p=1.0,
        metadata={},
        text=m.ResponseTextParam(format=text_format or m.ResponseFormatText(type="text")),
    )


def record(*inputs: Any, **fields: Any) -> StoredResponse:
    return StoredResponse(response(**fields), list(inputs) or [user_message("Hi")], P)


def texts(items: list[Any]) -> list[str]:
    return [item.content[0].text for item in items]


# --- save and get ----------------------------------------------------------------------------


def test_get_returns_an_equal_record_for_every_kind_of_item(store: Store) -> None:
    call = m.FunctionToolCall(
        id=new_id("function_call"),
        type="function_call",
        call_id="call_1",
        name="lookup",
        arguments='{"q": 1}',
        status="completed",
    )
    reasoning = m.ReasoningItem(
        id=new_id("reasoning"),
        type="reasoning",
        summary=[m.SummaryTextContent(type="summary_text", text="Thinking.")],
    )
    call_output = m.FunctionToolCallOutputResource(
        id=new_id("function_call_output"),
        type="function_call_output",
        call_id="call_0",
        output="42",
        status="completed",
    )
    saved = record(
        user_message("Hi"), call_output, output=[reasoning, call, assistant_message("Done.")]
    )

    run(store.save(saved))

    assert run(store.get(P, saved.response.id)) == saved


def test_get_keeps_which_fields_were_set(store: Store) -> None:
    """The API renders with exclude_unset, so a stored response must render as it did."""
    saved = record()
    run(store.save(saved))

    fetched = run(store.get(P, saved.response.id))

    assert fetched is not None
    assert fetched.response.model_dump(mode="json", exclude_unset=True) == (
        saved.response.model_dump(mode="json", exclude_unset=True)
    )


def test_a_json_schema_text_format_survives_the_round_trip(store: Store) -> None:
    """The format's `schema` field is `schema_` in the model: only its alias validates back."""
    json_schema = m.TextResponseFormatJsonSchema(
        type="json_schema",
        name="answer",
        schema=m.ResponseFormatJsonSchemaSchema(type="object"),  # type: ignore[call-arg]
        strict=True,
    )
    saved = record(text_format=json_schema)
    run(store.save(saved))

    assert run(store.get(P, saved.response.id)) == saved


def test_get_of_an_unknown_id_is_none(store: Store) -> None:
    assert run(store.get(P, "resp_unknown")) is None


def test_saving_again_replaces_status_and_output(store: Store) -> None:
    started = record(status="in_progress", output=[])
    run(store.save(started))
    finished = StoredResponse(
        started.response.model_copy(
            update={"status": "completed", "output": [assistant_message("Done.")]}
        ),
        started.input_items,
        P,
    )

    run(store.save(finished))

    assert run(store.get(P, started.response.id)) == finished


def test_save_many_keeps_the_last_record_of_a_response(store: SqlStore) -> None:
    first = record(status="in_progress", output=[])
    last = StoredResponse(
        first.response.model_copy(update={"status": "completed"}), first.input_items, P
    )
    other = record()

    run(store.save_many([encode(r) for r in (first, other, last)]))

    assert run(store.get(P, first.response.id)) == last
    assert run(store.get(P, other.response.id)) == other


def test_saving_a_finished_response_again_replaces_it(store: Store) -> None:
    finished = record()
    run(store.save(finished))
    again = StoredResponse(
        finished.response.model_copy(update={"output": [assistant_message("Again.")]}),
        [user_message("Hi again")],
        P,
    )

    run(store.save(again))

    assert run(store.get(P, finished.response.id)) == again


def test_a_batch_with_a_response_stored_by_an_earlier_run_lands_whole(url: str) -> None:
    """The store presumes a response it has not seen unfinished is new; one stored by an
    earlier process must still be replaced, and the rest of its batch saved."""
    earlier = record(status="in_progress", output=[])
    first = run(open_store(url))
    run(first.save(earlier))
    run(first.close())
    failed = StoredResponse(
        earlier.response.model_copy(update={"status": "failed"}), earlier.input_items, P
    )
    other = record()

    second = run(open_store(url))
    assert isinstance(second, SqlStore)
    try:
        run(second.save_many([encode(failed), encode(other)]))

        assert run(second.get(P, earlier.response.id)) == failed
        assert run(second.get(P, other.response.id)) == other
        page = run(second.input_items(P, earlier.response.id, after=None, limit=10, order="asc"))
        assert page is not None and page.items == earlier.input_items
    finally:
        run(second.close())


def test_a_response_deleted_while_unfinished_is_stored_again_by_its_next_save(
    store: Store,
) -> None:
    started = record(status="in_progress", output=[])
    run(store.save(started))
    run(store.delete(P, started.response.id))
    finished = StoredResponse(
        started.response.model_copy(update={"status": "completed"}), started.input_items, P
    )

    run(store.save(finished))

    assert run(store.get(P, finished.response.id)) == finished


def test_concurrent_saves_all_land(store: Store) -> None:
    """Concurrent writers, some of one response, neither conflict nor lose a save."""
    records = [record(user_message(f"message {n}")) for n in range(12)]
    again = [StoredResponse(r.response, [user_message("again")], P) for r in records[:4]]

    async def save_all() -> None:
        await asyncio.gather(*(store.save(r) for r in records))
        await asyncio.gather(*(store.save(r) for r in again))

    run(save_all())

    for saved in again + records[4:]:
        assert run(store.get(P, saved.response.id)) == saved


def test_no_query_runs_on_the_event_loop_thread(url: str) -> None:
    threads: set[int] = set()
    run(run(open_store(url)).close())  # the file and its schema
    engine = create_store_engine(url)
    event.listen(engine, "before_cursor_execute", lambda *_: threads.add(threading.get_ident()))
    store = SqlStore(engine)
    saved = record()

    async def use() -> int:
        await store.save(saved)
        await store.get(P, saved.response.id)
        await store.context(P, saved.response.id)
        await store.close()
        return threading.get_ident()

    loop_thread = run(use())

    assert threads
    assert loop_thread not in threads


_SAVE_AND_CRASH = """
import asyncio, os, sys
from tests.store.test_store import record
from openresponses.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    saved = record()
    await store.save(saved)
    print(saved.response.id, flush=True)
    os._exit(9)  # no close, no checkpoint, no cleanup

asyncio.run(main())
"""


def test_a_save_survives_a_crash_right_after_it(url: str) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", _SAVE_AND_CRASH, url],
        cwd=Path(__file__).parents[2],  # where `tests` imports from
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode == 9, crashed.stderr
    store = run(open_store(url))
    try:
        assert run(store.get(P, crashed.stdout.strip())) is not None
    finally:
        run(store.close())


# --- delete ----------------------------------------------------------------------------------


def test_delete_removes_the_response_and_its_items(store: Store) -> None:
    saved = record(user_message("Hi"))
    run(store.save(saved))

    assert run(store.delete(P, saved.response.id)) is True

    assert run(store.get(P, saved.response.id)) is None
    assert run(store.input_items(P, saved.response.id, after=None, limit=20, order="asc")) is None
    assert run(store.find_item(P, saved.input_items[0].id)) is None


def test_delete_of_a_missing_response_is_false(store: Store) -> None:
    saved = record()
    run(store.save(saved))
    run(store.delete(P, saved.response.id))

    assert run(store.delete(P, saved.response.id)) is False


# --- input_items -----------------------------------------------------------------------------


def five_inputs(store: Store) -> str:
    saved = record(*(user_message(f"m{n}") for n in range(5)))
    run(store.save(saved))
    return saved.response.id


def test_input_items_pages_forward_with_after(store: Store) -> None:
    response_id = five_inputs(store)
    pages = []
    after = None
    for _ in range(3):
        page = run(store.input_items(P, response_id, after=after, limit=2, order="asc"))
        assert page is not None
        pages.append((texts(page.items), page.has_more))
        after = page.items[-1].id

    assert pages == [(["m0", "m1"], True), (["m2", "m3"], True), (["m4"], False)]


def test_input_items_pages_backward_in_desc_order(store: Store) -> None:
    response_id = five_inputs(store)
    first = run(store.input_items(P, response_id, after=None, limit=3, order="desc"))
    assert first is not None
    rest = run(store.input_items(P, response_id, after=first.items[-1].id, limit=3, order="desc"))
    assert rest is not None

    assert (texts(first.items), first.has_more) == (["m4", "m3", "m2"], True)
    assert (texts(rest.items), rest.has_more) == (["m1", "m0"], False)


def test_input_items_has_no_more_when_the_page_ends_exactly(store: Store) -> None:
    response_id = five_inputs(store)

    page = run(store.input_items(P, response_id, after=None, limit=5, order="asc"))

    assert page is not None
    assert (len(page.items), page.has_more) == (5, False)


def test_input_items_leave_out_output_items(store: Store) -> None:
    saved = record(user_message("question"), output=[assistant_message("answer")])
    run(store.save(saved))

    page = run(store.input_items(P, saved.response.id, after=None, limit=20, order="asc"))

    assert page is not None
    assert texts(page.items) == ["question"]


def test_input_items_after_an_unknown_id_is_an_empty_page(store: Store) -> None:
    response_id = five_inputs(store)

    page = run(store.input_items(P, response_id, after="msg_unknown", limit=2, order="asc"))

    assert page is not None
    assert (page.items, page.has_more) == ([], False)


def test_input_items_of_a_response_without_input_is_an_empty_page(store: Store) -> None:
    saved = StoredResponse(response(), [], P)
    run(store.save(saved))

    page = run(store.input_items(P, saved.response.id, after=None, limit=20, order="desc"))

    assert page is not None
    assert (page.items, page.has_more) == ([], False)


def test_input_items_of_an_unknown_response_is_none(store: Store) -> None:
    assert run(store.input_items(P, "resp_unknown", after=None, limit=20, order="asc")) is None


# --- context ---------------------------------------------------------------------------------


def chain(store: Store, length: int) -> list[StoredResponse]:
    records: list[StoredResponse] = []
    for n in range(length):
        previous = records[-1].response.id if records else None
        records.append(
            record(user_message(f"q{n}"), output=[assistant_message(f"a{n}")], previous=previous)
        )
        run(store.save(records[-1]))
    return records


def test_context_lists_the_chain_oldest_first_inputs_before_outputs(store: Store) -> None:
    records = chain(store, 3)

    context = run(store.context(P, records[-1].response.id))

    assert context is not None
    assert texts(context) == ["q0", "a0", "q1", "a1", "q2", "a2"]


def test_context_of_a_response_in_the_middle_ends_there(store: Store) -> None:
    records = chain(store, 3)

    context = run(store.context(P, records[1].response.id))

    assert context is not None
    assert texts(context) == ["q0", "a0", "q1", "a1"]


def test_context_returns_the_stored_item_models(store: Store) -> None:
    records = chain(store, 2)

    context = run(store.context(P, records[-1].response.id))

    expected = [item for r in records for item in [*r.input_items, *r.response.output]]
    assert context == expected


def test_context_stops_at_a_deleted_ancestor(store: Store) -> None:
    records = chain(store, 3)
    run(store.delete(P, records[0].response.id))

    context = run(store.context(P, records[-1].response.id))

    assert context is not None
    assert texts(context) == ["q1", "a1", "q2", "a2"]


def test_context_of_an_unknown_id_is_none(store: Store) -> None:
    assert run(store.context(P, "resp_unknown")) is None


# --- find_item -------------------------------------------------------------------------------


def test_find_item_finds_input_and_output_items(store: Store) -> None:
    saved = record(user_message("question"), output=[assistant_message("answer")])
    run(store.save(saved))

    found = [run(store.find_item(P, saved.input_items[0].id))]
    found.append(run(store.find_item(P, saved.response.output[0].id)))

    assert found == [saved.input_items[0], saved.response.output[0]]


def test_find_item_prefers_the_newest_copy(store: Store) -> None:
    """An item_reference copies an item, id and all, into a later response's input."""
    original = user_message("original")
    older = record(original, created_at=1_000)
    copy = original.model_copy(update={"status": "incomplete"})
    newer = record(copy, created_at=2_000)
    run(store.save(newer))
    run(store.save(older))

    assert run(store.find_item(P, original.id)) == copy


def test_find_item_of_an_unknown_id_is_none(store: Store) -> None:
    assert run(store.find_item(P, "msg_unknown")) is None


# --- opening ---------------------------------------------------------------------------------


def test_saved_data_survives_reopening_the_store(url: str) -> None:
    saved = record()
    first = run(open_store(url))
    run(first.save(saved))
    run(first.close())

    second = run(open_store(url))
    try:
        assert run(second.get(P, saved.response.id)) == saved
    finally:
        run(second.close())


def test_opening_twice_records_each_schema_version_once(url: str) -> None:
    for _ in range(2):
        run(run(open_store(url)).close())

    engine = create_store_engine(url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version FROM schema_version")).scalars().all()
    engine.dispose()

    assert sorted(versions) == [migration.version for migration in MIGRATIONS]


def test_a_database_from_a_newer_release_is_refused(url: str) -> None:
    run(run(open_store(url)).close())
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version (version, description) VALUES (999, 'x')"))

    with pytest.raises(RuntimeError, match="newer"):
        migrate(engine)
    engine.dispose()


def test_migrations_started_together_on_postgresql_both_succeed(postgres_url: str) -> None:
    engines = [create_store_engine(postgres_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def migrate_at_once(engine: Any) -> None:
        start.wait()
        try:
            migrate(engine)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=migrate_at_once, args=(e,)) for e in engines]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with engines[0].connect() as conn:
        versions = conn.execute(text("SELECT version FROM schema_version")).scalars().all()
    for engine in engines:
        engine.dispose()

    assert errors == []
    assert sorted(versions) == [migration.version for migration in MIGRATIONS]


def test_an_unnamed_in_memory_duckdb_is_refused() -> None:
    """Each connection would get a database of its own, and the tables only one of them."""
    with pytest.raises(ValueError, match="in-memory"):
        create_store_engine("duckdb:///:memory:")


def test_duckdb_url_is_the_absolute_file_in_the_data_dir(tmp_path: Path) -> None:
    assert duckdb_url(tmp_path) == f"duckdb:///{tmp_path.resolve()}/openresponses.duckdb"
