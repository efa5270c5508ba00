"""Projects see only their own objects (issue 21): another project's object answers exactly as
a missing one does, on every operation of the API, over HTTP and over WebSocket.

The matrix comes from the operations table (`generated.operations.OPERATIONS`): every operation
with an id in its path gets a row naming project A's objects there (`_path_rows`), so a new
endpoint is covered as soon as it is generated; `VARIANTS` adds rows for A's other objects of a
kind, for A's ids inside B's own objects, and for every reference a body can make
(`previous_response_id`, `conversation`, `item_reference`, `file_id`, `vector_store_ids`,
`file_ids`, list cursors). Project B sends each row twice: naming A's objects, and naming fresh
ids of the same shape that never existed. Once the fresh ids are put back as A's, the answers
must be the same, status and body; and A's objects must read the same before and after.
`test_every_operation_has_an_isolation_case` fails for an operation with no row, no test of its
own and no reason to be global.

One server per store (DuckDB, PostgreSQL) serves the matrix, with three projects from
`OPENRESPONSES_API_KEYS`: A owns the objects, B owns a few of its own (made after A's, so that a
cursor naming A's object would find them), and C owns nothing. (`openresponses keys`, the
default project and storage quotas are tests/test_keys.py's.)
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from websockets.sync.client import connect

from openresponses.generated.operations import OPERATIONS
from tests.conftest import Server, postgres_schema, server_env
from tests.upstream import Hang, ScriptedUpstream, Text

MODEL = "isolation-model"
HUNG_MODEL = "isolation-hung-model"
KEYS = {"a": "sk-project-a", "b": "sk-project-b", "c": "sk-project-c"}
PAGE = b"Isolation: this page belongs to project A and nobody else."

GLOBAL = {
    "listModels": (
        "lists the providers' models, no stored object (a project with providers of its own "
        "lists through them: tests/test_project_providers.py)"
    ),
    "createEmbedding": "computes vectors from the request alone, and stores nothing",
    "createChatCompletion": (
        "forwards the request to the provider and stores nothing: Chat Completions here keeps "
        "no completions and names no stored object"
    ),
}
"""Operations that neither read nor make a project's stored objects, and why."""


# --- the world: three projects on one server per store -------------------------------------------


@dataclass
class World:
    """A server, and the ids of each project's objects (`ids["a"]["file"]`)."""

    server: Server
    ids: dict[str, dict[str, str]] = field(default_factory=dict)

    def http(self, project: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {KEYS[project]}"}
        return httpx.Client(base_url=self.server.base_url, headers=headers, timeout=5)

    def client(self, project: str) -> openai.OpenAI:
        return self.server.client(KEYS[project])


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    upstream: ScriptedUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    upstream.responder(lambda _: Text("Noted."), MODEL)
    upstream.responder(lambda _: Hang(), HUNG_MODEL)
    with contextlib.ExitStack() as stack:
        store = {}
        if request.param == "postgresql":
            store["OPENRESPONSES_STORE_URL"] = stack.enter_context(postgres_schema())
        env = server_env(
            upstream,
            OPENRESPONSES_API_KEYS=",".join(KEYS.values()),
            # A's running response hangs upstream for the whole module, until A cancels it.
            OPENRESPONSES_FIRST_BYTE_TIMEOUT="600",
            **store,
        )
        server = Server(tmp_path_factory.mktemp("isolation-data"), env).start()
        stack.callback(server.stop)
        found = World(server)
        found.ids["a"] = _plant_a(found.client("a"))
        stack.callback(_cancel_quietly, found.client("a"), found.ids["a"]["running"])
        found.ids["b"] = _plant_b(found.client("b"))
        found.ids["c"] = {}
        yield found


def _plant_a(client: openai.OpenAI) -> dict[str, str]:
    """A stored response with input items, one chained to it, a background response still
    running and one finished, a conversation with an item, a file, a vector store holding it,
    and a file batch (of a second file) in that store."""
    developer = {"type": "message", "role": "developer", "content": "Be brief."}
    response = client.responses.create(model=MODEL, input=[developer, _user("Hi")])  # type: ignore[list-item]
    chained = client.responses.create(model=MODEL, input="More", previous_response_id=response.id)
    running = client.responses.create(model=HUNG_MODEL, input="Wait", background=True)
    finished = client.responses.create(model=MODEL, input="Later", background=True)
    _wait(lambda: client.responses.retrieve(running.id).status != "in_progress")
    _wait(lambda: client.responses.retrieve(finished.id).status != "completed")
    conversation = client.conversations.create(items=[_user("Hello")])  # type: ignore[list-item]
    file = _upload(client)
    store = client.vector_stores.create(name="a's store", file_ids=[file])
    batch_file = _upload(client)
    batch = client.vector_stores.file_batches.create(store.id, file_ids=[batch_file])
    _settle(client, store.id)
    return {
        "response": response.id,
        "input_item": _first_input_item(client, response.id),
        "output_item": _id(response.output[0].id),
        "chained": chained.id,
        "running": running.id,
        "finished": finished.id,
        "conversation": conversation.id,
        "conversation_item": _id(client.conversations.items.list(conversation.id).data[0].id),
        "file": file,
        "vector_store": store.id,
        "batch_file": batch_file,
        "batch": batch.id,
    }


def _plant_b(client: openai.OpenAI) -> dict[str, str]:
    """B's own objects, for rows that name A's ids inside them: a stored response, a
    conversation with an item, and a vector store holding a file of B's."""
    response = client.responses.create(model=MODEL, input="Hi")
    conversation = client.conversations.create(items=[_user("Hello")])  # type: ignore[list-item]
    file = _upload(client)
    store = client.vector_stores.create(name="b's store", file_ids=[file])
    _settle(client, store.id)
    return {
        "response": response.id,
        "conversation": conversation.id,
        "file": file,
        "vector_store": store.id,
    }


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def _id(value: str | None) -> str:
    assert value is not None
    return value


def _upload(client: openai.OpenAI) -> str:
    return client.files.create(file=("page.txt", io.BytesIO(PAGE)), purpose="assistants").id


def _first_input_item(client: openai.OpenAI, response_id: str) -> str:
    return _id(client.responses.input_items.list(response_id).data[0].id)


def _settle(client: openai.OpenAI, store_id: str) -> None:
    _wait(lambda: client.vector_stores.retrieve(store_id).status != "completed")


def _wait(busy: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while busy():
        assert time.monotonic() < deadline, "an object stayed busy for 30 s"
        time.sleep(0.05)


def _cancel_quietly(client: openai.OpenAI, response_id: str) -> None:
    """Ends A's hung response, so that the server stops at once."""
    with contextlib.suppress(openai.APIError):
        client.responses.cancel(response_id)


# --- the rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One request B makes. `<a:kind>` names A's object of that kind (the row is sent again
    with a fresh id in its place), `<b:kind>` B's own; `missing` is the status a fresh id gets,
    which shows the row reaches the lookup it tests."""

    operation: str
    name: str
    missing: int
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.name}"


PATH_KINDS = {
    "response_id": "<a:response>",
    "conversation_id": "<a:conversation>",
    "item_id": "<a:conversation_item>",
    "file_id": "<a:file>",
    "vector_store_id": "<a:vector_store>",
    "batch_id": "<a:batch>",
}
"""A's object for each path parameter of the operations table (a new parameter names a kind
of object A does not have yet: its rows fail until `_plant_a` makes one)."""

BODIES: dict[str, Any] = {
    "createConversationItems": {"items": [_user("Sneaking in")]},
    "updateConversation": {"metadata": {"owner": "b"}},
    "modifyVectorStore": {"name": "b was here"},
    "createVectorStoreFile": {"file_id": "<b:file>"},
    "createVectorStoreFileBatch": {"file_ids": ["<b:file>"]},
    "updateVectorStoreFileAttributes": {"attributes": {"owner": "b"}},
    "searchVectorStore": {"query": "isolation"},
}
"""A valid body for each operation with ids in its path that takes one: without it the row
would be refused before any lookup (and its `missing` status says so)."""


def _path_rows() -> list[Row]:
    """Every operation with an id in its path, naming A's objects there."""
    return [
        Row(
            name,
            "a-ids-in-path",
            404,
            path={
                param: PATH_KINDS.get(param, f"<a:{param}>")
                for param in re.findall(r"{(\w+)}", op.path)
            },
            body=BODIES.get(name),
        )
        for name, op in OPERATIONS.items()
        if "{" in op.path
    ]


def _response_rows() -> list[Row]:
    """The response operations on A's other responses: chained, running, finished."""
    return [
        Row(name, kind, 404, path={"response_id": f"<a:{kind}>"})
        for name in ("getResponse", "deleteResponse", "cancelResponse", "listInputItems")
        for kind in ("chained", "running", "finished")
    ]


def _create(name: str, missing: int, **body: Any) -> Row:
    return Row("createResponse", name, missing, body={"model": MODEL, **body})


def _item(kind: str) -> list[dict[str, Any]]:
    return [{"type": "item_reference", "id": f"<a:{kind}>"}, _user("Go on")]


def _file_part(part: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "message", "role": "user", "content": [part]}]


INPUT_FILE = {"type": "input_file", "file_id": "<a:file>"}

VARIANTS: list[Row] = [
    *_response_rows(),
    # Resuming a stream: of the running response, from the start and after an event; of
    # the finished one; and of one that was never in the background.
    Row("getResponse", "stream-running", 404, {"response_id": "<a:running>"}, {"stream": "true"}),
    Row(
        "getResponse",
        "stream-running-after-0",
        404,
        {"response_id": "<a:running>"},
        {"stream": "true", "starting_after": 0},
    ),
    Row("getResponse", "stream-finished", 404, {"response_id": "<a:finished>"}, {"stream": "true"}),
    Row("getResponse", "stream-stored", 404, {"response_id": "<a:response>"}, {"stream": "true"}),
    # A's items, inside B's own objects.
    Row(
        "listInputItems",
        "b-response-after-a-item",
        200,
        {"response_id": "<b:response>"},
        {"after": "<a:input_item>"},
    ),
    Row(
        "listConversationItems",
        "b-conversation-after-a-item",
        404,
        {"conversation_id": "<b:conversation>"},
        {"after": "<a:conversation_item>"},
    ),
    *(
        Row(name, "b-conversation-a-item", 404, {"conversation_id": "<b:conversation>"} | ids)
        for name in ("getConversationItem", "deleteConversationItem")
        for ids in [{"item_id": "<a:conversation_item>"}]
    ),
    Row(
        "createConversationItems",
        "b-conversation-a-item-reference",
        400,
        {"conversation_id": "<b:conversation>"},
        body={"items": _item("conversation_item")},
    ),
    Row("createConversation", "a-item-reference", 400, body={"items": _item("input_item")}),
    # A's files, stores and batches, inside B's own store.
    *(
        Row(name, "b-store-a-file", 404, {"vector_store_id": "<b:vector_store>"} | ids, body=body)
        for name, body in (
            ("getVectorStoreFile", None),
            ("deleteVectorStoreFile", None),
            ("updateVectorStoreFileAttributes", {"attributes": {"owner": "b"}}),
            ("retrieveVectorStoreFileContent", None),
        )
        for ids in [{"file_id": "<a:file>"}]
    ),
    *(
        Row(name, "b-store-a-batch", 404, {"vector_store_id": "<b:vector_store>"} | ids)
        for name in (
            "getVectorStoreFileBatch",
            "cancelVectorStoreFileBatch",
            "listFilesInVectorStoreBatch",
        )
        for ids in [{"batch_id": "<a:batch>"}]
    ),
    Row(
        "createVectorStoreFile",
        "b-store-a-file-id",
        404,
        {"vector_store_id": "<b:vector_store>"},
        body={"file_id": "<a:file>"},
    ),
    Row(
        "createVectorStoreFileBatch",
        "b-store-a-file-ids",
        404,
        {"vector_store_id": "<b:vector_store>"},
        body={"file_ids": ["<a:batch_file>"]},
    ),
    Row(
        "createVectorStoreFileBatch",
        "b-store-a-files",
        404,
        {"vector_store_id": "<b:vector_store>"},
        body={"files": [{"file_id": "<a:batch_file>"}]},
    ),
    Row("createVectorStore", "a-file-ids", 404, body={"name": "b's", "file_ids": ["<a:file>"]}),
    # List cursors naming A's objects: B's own, made after A's, must not come back.
    Row("listFiles", "after-a-file", 200, query={"after": "<a:file>", "order": "asc"}),
    Row(
        "listVectorStores",
        "after-a-store",
        200,
        query={"after": "<a:vector_store>", "order": "asc"},
    ),
    Row("listVectorStores", "before-a-store", 200, query={"before": "<a:vector_store>"}),
    Row(
        "listVectorStoreFiles",
        "b-store-after-a-file",
        200,
        {"vector_store_id": "<b:vector_store>"},
        {"after": "<a:file>", "order": "asc"},
    ),
    # Responses that refer to A's objects in their body.
    *(
        _create(f"previous-{kind}", 400, input="Go on", previous_response_id=f"<a:{kind}>")
        for kind in ("response", "chained", "running", "finished")
    ),
    _create("previous-stream", 400, input="Go", previous_response_id="<a:response>", stream=True),
    _create(
        "previous-background", 400, input="Go", previous_response_id="<a:response>", background=True
    ),
    _create("conversation", 404, input="Go on", conversation="<a:conversation>"),
    _create("conversation-object", 404, input="Go on", conversation={"id": "<a:conversation>"}),
    *(
        _create(f"item-reference-{kind}", 400, input=_item(kind))
        for kind in ("input_item", "output_item", "conversation_item")
    ),
    _create("input-file", 404, input=_file_part(INPUT_FILE)),
    _create(
        "input-image",
        404,
        input=_file_part({"type": "input_image", "file_id": "<a:file>", "detail": "auto"}),
    ),
    _create(
        "file-search",
        404,
        input="Search",
        tools=[{"type": "file_search", "vector_store_ids": ["<a:vector_store>"]}],
    ),
    Row(
        "Compactconversation",
        "previous",
        400,
        body={"model": MODEL, "previous_response_id": "<a:response>"},
    ),
    *(
        Row("Compactconversation", name, missing, body={"model": MODEL, **body})
        for name, missing, body in (
            ("previous", 400, {"previous_response_id": "<a:response>"}),
            ("item-reference", 400, {"input": _item("output_item")}),
            ("input-file", 404, {"input": _file_part(INPUT_FILE)}),
        )
    ),
    *(
        Row("Getinputtokencounts", name, missing, body={"model": MODEL, **body})
        for name, missing, body in (
            ("previous", 400, {"input": "Hi", "previous_response_id": "<a:chained>"}),
            ("conversation", 404, {"input": "Hi", "conversation": "<a:conversation>"}),
            ("item-reference", 400, {"input": _item("input_item")}),
            # Counting reads no file (a missing one counts as its reference alone), but
            # should it ever, it must read only the caller's.
            ("input-file", 200, {"input": _file_part(INPUT_FILE)}),
        )
    ),
]

ROWS = _path_rows() + VARIANTS

REFERENCE = re.compile(r"<([abc]):(\w+)>")


def _fill(value: Any, ids: dict[str, dict[str, str]]) -> Any:
    """`value` with every `<owner:kind>` replaced by that object's id."""
    if isinstance(value, str):
        return REFERENCE.sub(lambda found: ids[found[1]][found[2]], value)
    if isinstance(value, list):
        return [_fill(entry, ids) for entry in value]
    if isinstance(value, dict):
        return {key: _fill(entry, ids) for key, entry in value.items()}
    return value


def _kinds(*values: Any) -> set[str]:
    """The kinds of A's objects the values name."""
    return {kind for owner, kind in REFERENCE.findall(json.dumps(values)) if owner == "a"}


def _fresh(existing: str) -> str:
    """An id that never existed, shaped like `existing`: its prefix, then random hex."""
    prefix = re.match(r"[a-z]+[_-]", existing)
    assert prefix is not None, existing
    tail = len(existing) - prefix.end()
    return prefix[0] + secrets.token_hex(tail)[:tail]


@dataclass(frozen=True)
class Answer:
    status: int | None
    """None: no answer within the client's timeout (a stream that was followed)."""
    content_type: str
    body: str


def _send(client: httpx.Client, row: Row, ids: dict[str, dict[str, str]]) -> Answer:
    op = OPERATIONS[row.operation]
    path = op.path.format(**_fill(row.path, ids))
    try:
        answer = client.request(
            op.method,
            path,
            params=_fill(row.query, ids),
            json=_fill(row.body, ids) if row.body is not None else None,
        )
    except httpx.ReadTimeout:
        return Answer(None, "", "")
    return Answer(answer.status_code, answer.headers.get("content-type", ""), answer.text)


def _made_up(world: World, kinds: set[str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The world's ids with fresh ones in place of A's of `kinds`, and each fresh id's A's."""
    fresh_ids = {kind: _fresh(world.ids["a"][kind]) for kind in kinds}
    back = {fresh_ids[kind]: world.ids["a"][kind] for kind in kinds}
    return {**world.ids, "a": {**world.ids["a"], **fresh_ids}}, back


def _renamed(text: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        text = text.replace(old, new)
    return text


VIEWS: dict[str, tuple[str, ...]] = {
    "response": ("/responses/{response}", "/responses/{response}/input_items"),
    "chained": ("/responses/{chained}", "/responses/{chained}/input_items"),
    "running": ("/responses/{running}",),
    "finished": ("/responses/{finished}", "/responses/{finished}/input_items"),
    "conversation": ("/conversations/{conversation}", "/conversations/{conversation}/items"),
    "file": ("/files/{file}", "/files/{file}/content"),
    "batch_file": ("/files/{batch_file}", "/files/{batch_file}/content"),
    "vector_store": (
        "/vector_stores/{vector_store}",
        "/vector_stores/{vector_store}/files",
        "/vector_stores/{vector_store}/files/{file}",
    ),
    "batch": (
        "/vector_stores/{vector_store}/file_batches/{batch}",
        "/vector_stores/{vector_store}/file_batches/{batch}/files",
    ),
}
"""What A reads to see each of its objects whole (an item is seen through its response or
conversation)."""
VIEWS["input_item"] = VIEWS["output_item"] = VIEWS["response"]
VIEWS["conversation_item"] = VIEWS["conversation"]


def _a_view(world: World, kinds: set[str]) -> dict[str, str]:
    with world.http("a") as client:
        paths = {path.format(**world.ids["a"]) for kind in kinds for path in VIEWS[kind]}
        return {path: client.get(path).text for path in sorted(paths)}


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_another_projects_object_answers_as_a_missing_one(world: World, row: Row) -> None:
    kinds = _kinds(row.path, row.query, row.body)
    before = _a_view(world, kinds)
    made_up, back = _made_up(world, kinds)

    with world.http("b") as client:
        on_a = _send(client, row, world.ids)
        on_missing = _send(client, row, made_up)

    assert on_missing.status == row.missing, on_missing
    assert on_a == Answer(
        on_missing.status, on_missing.content_type, _renamed(on_missing.body, back)
    )
    assert _a_view(world, kinds) == before


# --- over WebSocket ------------------------------------------------------------------------------

SOCKET_ROWS = {
    **{
        f"previous-{kind}": {"previous_response_id": f"<a:{kind}>", "input": [_user("Go on")]}
        for kind in ("response", "chained")
    },
    **{
        f"item-reference-{kind}": {"input": _item(kind)}
        for kind in ("input_item", "output_item", "conversation_item")
    },
}
"""`response.create` messages that name A's objects, as the HTTP rows of createResponse do."""

SOCKET_END = ("error", "response.completed", "response.failed", "response.incomplete")


def _socket_turn(world: World, body: dict[str, Any]) -> list[dict[str, Any]]:
    """B's messages for one `response.create`, up to its end or its error."""
    url = world.server.base_url.replace("http://", "ws://") + "/responses"
    headers = {"authorization": f"Bearer {KEYS['b']}"}
    messages = []
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "response.create", "model": MODEL, **body}))
        while not messages or messages[-1]["type"] not in SOCKET_END:
            messages.append(json.loads(ws.recv(timeout=10)))
    return messages


@pytest.mark.parametrize("body", SOCKET_ROWS.values(), ids=SOCKET_ROWS.keys())
def test_over_websocket_another_projects_reference_answers_as_a_missing_one(
    world: World, body: dict[str, Any]
) -> None:
    kinds = _kinds(body)
    before = _a_view(world, kinds)
    made_up, back = _made_up(world, kinds)

    on_a = _socket_turn(world, _fill(body, world.ids))
    on_missing = _socket_turn(world, _fill(body, made_up))

    assert [(message["type"], message["status"]) for message in on_missing] == [("error", 400)]
    assert on_a == json.loads(_renamed(json.dumps(on_missing), back))
    assert _a_view(world, kinds) == before


# --- lists, and what A still has -----------------------------------------------------------------


def _listed(world: World, project: str, path: str) -> list[str]:
    with world.http(project) as client:
        return [entry["id"] for entry in client.get(path).json()["data"]]


LISTS = {"listFiles": ("file", "batch_file"), "listVectorStores": ("vector_store",)}
"""Each listing, and the kinds of objects it lists."""


@pytest.mark.parametrize(("operation", "kinds"), LISTS.items(), ids=LISTS.keys())
def test_lists_show_only_the_callers_objects(
    world: World, operation: str, kinds: tuple[str, ...]
) -> None:
    path = OPERATIONS[operation].path
    listed = {project: set(_listed(world, project, path)) for project in KEYS}

    mine = {
        project: {ids[kind] for kind in kinds if kind in ids} for project, ids in world.ids.items()
    }
    assert listed == mine
    assert listed["a"] and listed["b"] and listed["c"] == set()


def test_a_search_of_ones_own_store_finds_only_ones_own_files(world: World) -> None:
    # A's file and B's hold the same text: a chunk index shared across stores would show it.
    store = world.ids["b"]["vector_store"]
    with world.http("b") as client:
        found = client.post(f"/vector_stores/{store}/search", json={"query": "isolation"}).json()

    assert found["data"]
    assert {hit["file_id"] for hit in found["data"]} == {world.ids["b"]["file"]}


def test_an_upload_belongs_to_its_uploader_alone(world: World) -> None:
    uploaded = _upload(world.client("c"))
    try:
        with world.http("a") as client:
            theirs = client.get(f"/files/{uploaded}")
            made_up = _fresh(uploaded)
            missing = client.get(f"/files/{made_up}")
        mine = _listed(world, "c", "/files")
    finally:
        world.client("c").files.delete(uploaded)

    assert mine == [uploaded]
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == json.loads(missing.text.replace(made_up, uploaded))


ENDINGS = [
    row
    for row in ROWS
    if OPERATIONS[row.operation].method == "delete" or row.operation.startswith("cancel")
]
"""The rows that would end A's objects, were they B's."""


def test_after_b_deletes_and_cancels_a_s_objects_are_intact(world: World) -> None:
    with world.http("b") as client:
        for row in ENDINGS:
            _send(client, row, world.ids)
    client = world.client("a")
    ids = world.ids["a"]

    assert client.responses.retrieve(ids["running"]).status == "in_progress"
    for kind in ("response", "chained", "finished"):
        assert client.responses.retrieve(ids[kind]).status == "completed"
    items = client.conversations.items.list(ids["conversation"]).data
    assert [item.id for item in items] == [ids["conversation_item"]]
    assert client.files.content(ids["file"]).content == PAGE
    store = client.vector_stores.retrieve(ids["vector_store"])
    assert (store.status, store.file_counts.completed) == ("completed", 2)
    batch = client.vector_stores.file_batches.retrieve(
        ids["batch"], vector_store_id=ids["vector_store"]
    )
    assert (batch.status, batch.file_counts.completed) == ("completed", 1)


# --- every operation is covered ------------------------------------------------------------------

OWN_TESTS: dict[str, Callable[..., None]] = {
    "listFiles": test_lists_show_only_the_callers_objects,
    "listVectorStores": test_lists_show_only_the_callers_objects,
    "createFile": test_an_upload_belongs_to_its_uploader_alone,
}
"""Operations whose isolation is a test of its own rather than rows."""


def test_every_operation_has_an_isolation_case() -> None:
    covered = {row.operation for row in ROWS} | set(OWN_TESTS) | set(GLOBAL)

    assert sorted(set(OPERATIONS) - covered) == []
    assert sorted(covered - set(OPERATIONS)) == []
    assert [name for name in GLOBAL if "{" in OPERATIONS[name].path] == []
