"""Every operation of `spec/openapi.yaml`, fuzzed by schemathesis with all its checks but one
(`UNCHECKED` says why): no 5xx, every answer (and every streamed event) on the spec, and no
spec-valid request refused except the deliberate refusals below (listed with their reasons in
the README's "Deliberate refusals").

schemathesis generates `EXAMPLES` requests per operation and mode (valid and invalid) from the
spec's request schemas; the server answers them with the scripted upstream as its provider and
API keys of its own (so the authentication checks have something to check). Cases are the same
on every run (derandomized), so a failure reproduces with the curl command it prints.

Made-up ids reach only the 404 of every retrieve, update, delete and list: so before fuzzing,
real objects are created through the API (`Seeds`), and every other positive case of each
operation names them, in its path and where its body refers to an object.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import httpx
import openai
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openai.types.responses import EasyInputMessageParam
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import negative_data_rejection

from openresponses.generated.operations import OPERATIONS
from tests.conftest import Server, postgres_schema, server_env
from tests.upstream import Hang, ScriptedUpstream, Text

EXAMPLES = 30
"""Cases per operation and generation mode (positive, negative)."""

SPEC: dict[str, Any] = json.loads(
    resources.files("openresponses.generated").joinpath("openai.json").read_text()
)


def _declared(schema: dict[str, Any]) -> set[str]:
    """The top-level fields a body schema declares, through `$ref` and `allOf`."""
    ref = schema.get("$ref")
    if ref is not None:
        return _declared(SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]])
    parts = [_declared(part) for part in schema.get("allOf", [])]
    return set(schema.get("properties", {})).union(*parts)


DECLARED = {
    op["operationId"]: _declared(media["schema"])
    for item in SPEC["paths"].values()
    for op in item.values()
    for media in op.get("requestBody", {}).get("content", {}).values()
}
"""The top-level body fields of each operation that takes a body."""

LIVE_SUCCESS_SHARE = 1 / 5
"""The least share of 2xx answers among the cases of an operation with ids in its path that
name live objects: the others are refusals of what the generated query or body asks for
(the fewest seen: 4 of 15, adding conversation items; with made-up ids every one is a 404)."""

KEY = "sk-fuzz"
MODEL = "openapi-fuzz-model"
HUNG_MODEL = "openapi-fuzz-hung-model"


@dataclass(frozen=True)
class Refusal:
    """A spec-valid request the server refuses on purpose: its error `code` and a pattern
    over the error message, and why."""

    code: str | None
    message: str
    reason: str

    def covers(self, error: dict[str, Any]) -> bool:
        return error.get("code") == self.code and bool(re.search(self.message, error["message"]))


REFUSALS = (
    Refusal(
        "unknown_parameter",
        r"^Unknown parameter",
        "fields the spec does not define are refused, as OpenAI refuses them (its request "
        "schemas leave `additionalProperties` open)",
    ),
    Refusal(
        "invalid_value",
        r"^limit must be between 1 and",
        "`limit` outside the range its description in the spec gives (1 to 100; 10,000 for "
        "files), which OpenAI refuses too",
    ),
    Refusal(
        "missing_required_parameter",
        r"^Missing required parameter: 'model'",
        "`POST /responses` without `model`: the spec lets a stored prompt supply it, and the "
        "server has no stored prompts",
    ),
    Refusal(
        "unsupported_parameter",
        r"is not supported by this server",
        "parameters of features the server does not implement (`prompt`, "
        "`prompt_cache_options`, a vector store's `description`…) are refused rather than "
        "silently ignored",
    ),
    Refusal(
        "unsupported_value",
        r"is not supported",
        "input item, tool and `include` types the server cannot run (`program_output`, "
        "hosted tools…) are refused rather than silently dropped",
    ),
    Refusal(
        "invalid_value",
        r"exceeded maximum size",
        "integers beyond 64 bits (token ids, chunk sizes) fit no model's vocabulary or store",
    ),
    Refusal(
        "invalid_value",
        r"^Invalid value for 'query(\[\d+\])?': String should have at least 1 character",
        "an empty vector store search query matches nothing and ranks nothing",
    ),
    Refusal(
        "invalid_value",
        r"^Invalid value for 'input(\[\d+\])*'",
        "embedding token ids outside any vocabulary (beyond 64 bits) are refused, as OpenAI "
        "refuses them",
    ),
    Refusal(
        None,
        r"^The search query must not be empty",
        "an empty vector store search query matches nothing and ranks nothing",
    ),
    Refusal(
        "invalid_value",
        r"^chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens",
        "a static chunking overlap above half the chunk size, which the spec's description of "
        "`chunk_overlap_tokens` forbids (its schema cannot say so), as OpenAI does",
    ),
    Refusal(
        "missing_required_parameter",
        r"^Missing required parameter: 'filters\.filters\[\d+\]\.type'",
        "a compound filter member without `type` (the spec leaves members untyped) cannot be "
        "evaluated",
    ),
    Refusal(
        "previous_response_not_found",
        r"^Previous response with id",
        "a `previous_response_id` naming no stored response is a 400, as OpenAI answers it",
    ),
    Refusal(
        "mutually_exclusive_parameters",
        r"^Mutually exclusive parameters",
        "`previous_response_id` and `conversation` together: each names the context to extend, "
        "and OpenAI refuses the pair as well (the spec cannot say that two fields exclude "
        "each other)",
    ),
    Refusal(
        "string_above_max_length",
        r"^Invalid 'metadata\.",
        "`metadata` keys over 64 characters or values over 512, OpenAI's limits (in its "
        "spec's prose only)",
    ),
    Refusal(
        "object_above_max_properties",
        r"^Invalid 'metadata': too many properties",
        "`metadata` with more than 16 pairs, OpenAI's limit (in its spec's prose only)",
    ),
    Refusal(
        "mutually_exclusive_parameters",
        r"^Mutually exclusive parameters. Ensure you are only providing one of: 'file_ids'",
        "a file batch with both `file_ids` and `files`, which the spec's descriptions call "
        "mutually exclusive (its schema cannot say so)",
    ),
    Refusal(
        "url_not_allowed",
        r"(, a [a-z-]+ address\. | is not an http or https URL\.$)",
        "an image, file or MCP server URL that is not http(s) or points to a loopback, "
        "private, link-local or other non-public address: the server or its provider would "
        "fetch it from inside the server's network (SSRF; see tools/guard.py)",
    ),
    Refusal(
        "url_unresolvable",
        r"could not be resolved\.$",
        "such a URL whose host does not resolve: a host that cannot be judged is not reached",
    ),
    Refusal(
        None,
        r"^Nothing to compact",
        "`POST /responses/compact` with neither `input` nor `previous_response_id` has nothing "
        "to compact",
    ),
)

load_all_checks()
UNCHECKED = {
    negative_data_rejection: "a request outside the schema that the server still understands "
    "(a null for an optional field, an unknown query parameter) is accepted, as OpenAI "
    "accepts it; leniency is no departure from the spec's answers",
}
CHECKED: list[Any] = [check for check in CHECKS.get_all() if check not in UNCHECKED]

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Operation]


@dataclass
class Findings:
    """What the run saw; a problem found by many cases is kept once per operation."""

    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    problems: dict[tuple[str, str], str] = field(default_factory=dict)
    positive: dict[str, list[int]] = field(default_factory=dict)
    """The statuses of each operation's positive cases, in order: the even ones named real
    objects."""

    def add(self, operation: str, title: str, detail: str) -> None:
        self.problems.setdefault((operation, title), f"{operation}: {title}: {detail}")


PAGE = b"Fuzzing reaches real objects: this page sits in a vector store."


@dataclass
class Seeds:
    """Live objects, created through the API, for the cases to name: a stored background
    response with input items (whose events `stream=true` replays), a conversation with an
    item, a file attached to a vector store, and a file batch. A delete gets a throwaway
    object of its own, so that the others stay live for the operations after it; a cancel
    gets a response cancelled while it ran, which it answers again."""

    client: openai.OpenAI
    ids: dict[str, str] = field(default_factory=dict)

    def plant(self) -> Seeds:
        response = self.client.responses.create(
            model=MODEL,
            input=[{"type": "message", "role": "developer", "content": "Be brief."}, _ask("Hi")],
            background=True,
        )
        conversation = self._conversation()
        file = self._file()
        store = self.client.vector_stores.create(name="fuzz", file_ids=[file])
        batch = self.client.vector_stores.file_batches.create(store.id, file_ids=[self._file()])
        self.ids = {
            "response_id": response.id,
            "conversation_id": conversation,
            "item_id": self._item(conversation),
            "file_id": file,
            "vector_store_id": store.id,
            "batch_id": batch.id,
        }
        self._settle(store.id)
        self._finish(response.id)
        return self

    def name(self, case: Case) -> None:
        """Points the case at live objects: the ids in its path, and the ones its body refers
        to where that is cheap."""
        ids = {**self.ids, **self._own(case.operation.definition.raw["operationId"])}
        case.path_parameters = {name: ids[name] for name in case.path_parameters or {}}
        if isinstance(case.body, dict):
            _refer(case.body, ids)

    def _own(self, operation: str) -> dict[str, str]:
        """The objects an operation that ends one gets for itself."""
        fresh: dict[str, Callable[[], dict[str, str]]] = {
            "deleteResponse": lambda: {"response_id": self._response()},
            "cancelResponse": lambda: {"response_id": self._cancelled()},
            "deleteConversation": lambda: {"conversation_id": self._conversation()},
            "deleteConversationItem": lambda: {"item_id": self._item(self.ids["conversation_id"])},
            "deleteFile": lambda: {"file_id": self._file()},
            "deleteVectorStore": lambda: {"vector_store_id": self._store()},
            "deleteVectorStoreFile": lambda: {"file_id": self._attached()},
        }
        return fresh[operation]() if operation in fresh else {}

    def _response(self) -> str:
        return self.client.responses.create(model=MODEL, input="Hi").id

    def _cancelled(self) -> str:
        """A response cancelled while its upstream hangs (a finished one cannot be)."""
        response = self.client.responses.create(model=HUNG_MODEL, input="Hi", background=True)
        return self.client.responses.cancel(response.id).id

    def _conversation(self) -> str:
        return self.client.conversations.create(items=[_ask("Hi")]).id

    def _item(self, conversation: str) -> str:
        item = self.client.conversations.items.create(conversation, items=[_ask("Hi")]).data[0]
        assert item.id is not None
        return item.id

    def _file(self) -> str:
        page = ("page.txt", io.BytesIO(PAGE))
        return self.client.files.create(file=page, purpose="assistants").id

    def _store(self) -> str:
        return self.client.vector_stores.create(name="fuzz").id

    def _attached(self) -> str:
        """A new file in the vector store."""
        store = self.ids["vector_store_id"]
        file = self.client.vector_stores.files.create(store, file_id=self._file()).id
        self._settle(store)
        return file

    def _settle(self, store: str) -> None:
        """Waits for ingestion, so that no case races it."""
        _wait(lambda: bool(self.client.vector_stores.retrieve(store).file_counts.in_progress))

    def _finish(self, response: str) -> None:
        running = ("queued", "in_progress")
        _wait(lambda: self.client.responses.retrieve(response).status in running)


def _wait(busy: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while busy():
        assert time.monotonic() < deadline, "a seeded object stayed busy for 60 s"
        time.sleep(0.05)


def _ask(text: str) -> EasyInputMessageParam:
    return {"type": "message", "role": "user", "content": text}


def _refer(body: dict[str, Any], ids: dict[str, str]) -> None:
    """Makes the ids a body refers to name live objects."""
    if isinstance(body.get("file_id"), str):
        body["file_id"] = ids["file_id"]
    if isinstance(body.get("file_ids"), list):
        body["file_ids"] = [ids["file_id"]]
    for entry in body.get("files") or []:
        if isinstance(entry, dict):
            entry["file_id"] = ids["file_id"]
    if isinstance(body.get("previous_response_id"), str):
        body["previous_response_id"] = ids["response_id"]
    conversation = body.get("conversation")
    if isinstance(conversation, str):
        body["conversation"] = ids["conversation_id"]
    elif isinstance(conversation, dict):
        conversation["id"] = ids["conversation_id"]


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def fuzzed_server(
    request: pytest.FixtureRequest,
    upstream: ScriptedUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """The server on each store: PostgreSQL has its own failure modes (no NUL in text)."""
    upstream.responder(lambda request: Text("Hello there."), MODEL)
    upstream.responder(lambda request: Hang(), HUNG_MODEL)
    with contextlib.ExitStack() as stack:
        store = {}
        if request.param == "postgres":
            store["OPENRESPONSES_STORE_URL"] = stack.enter_context(postgres_schema())
        # Schemathesis sends a wrong key with every operation it fuzzes, from one address:
        # throttling that address after 20 (tests/test_rate_limits.py) would answer its
        # auth check 429 instead of the 401 this run checks, so it is off here.
        env = server_env(
            upstream,
            OPENRESPONSES_API_KEYS=KEY,
            OPENRESPONSES_AUTH_FAILURES_PER_MINUTE="0",
            **store,
        )
        server = Server(tmp_path_factory.mktemp("fuzz-data"), env).start()
        stack.callback(server.stop)
        yield server


@pytest.fixture(scope="module")
def findings(fuzzed_server: Server) -> Findings:
    schema = schemathesis.openapi.from_dict(SPEC, config=schemathesis.Config())
    run = Findings()
    started = time.monotonic()
    seeds = Seeds(fuzzed_server.client(KEY)).plant()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation cannot be fuzzed: {result.err()}"
        for mode in schemathesis.GenerationMode:
            _fuzz(fuzzed_server.base_url, result.ok(), mode, run, seeds)
    print(f"\n{run.cases} cases in {time.monotonic() - started:.0f} s; statuses {run.statuses}")
    return run


def _fuzz(
    base_url: str,
    operation: Operation,
    mode: schemathesis.GenerationMode,
    run: Findings,
    seeds: Seeds,
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],  # problems are collected, never raised: nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def send(case: Case) -> None:
        _send(base_url, case, mode, run, seeds)

    send()


def _send(
    base_url: str, case: Case, mode: schemathesis.GenerationMode, run: Findings, seeds: Seeds
) -> None:
    if mode.is_positive and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = MODEL  # a made-up model is the upstream's 404, legitimately
    positive = run.positive.setdefault(case.operation.label, [])
    if mode.is_positive and len(positive) % 2 == 0:
        seeds.name(case)
        _drop_undeclared(case)
    for name in [name for name in case.headers or {} if name.lower() == "authorization"]:
        del case.headers[name]  # the server's key, not a made-up one (ignored_auth checks that)
    headers = {"authorization": f"Bearer {KEY}"}
    run.cases += 1
    response = case.call(base_url=base_url, headers=headers, timeout=60)
    run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
    if mode.is_positive:
        positive.append(response.status_code)
    try:
        case.validate_response(response, checks=CHECKED, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            if not _refused_on_purpose(failure, response):
                detail = _describe(failure, response, case, headers)
                run.add(case.operation.label, failure.title, detail)


def _drop_undeclared(case: Case) -> None:
    """Leaves out the top-level body fields the spec does not declare. Its bodies leave them
    open, so schemathesis adds some to most cases, which the server refuses (as OpenAI does):
    without this, hardly any create would succeed, and its answer go unchecked."""
    declared = DECLARED.get(case.operation.definition.raw["operationId"])
    if declared is not None and isinstance(case.body, dict):
        for key in set(case.body) - declared:
            del case.body[key]


def _refused_on_purpose(failure: Failure, response: schemathesis.Response) -> bool:
    if not isinstance(failure, RejectedPositiveData):
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return any(refusal.covers(error) for refusal in REFUSALS)


def _describe(
    failure: Failure, response: schemathesis.Response, case: Case, headers: dict[str, str]
) -> str:
    message = " ".join(failure.message.split())[:300]
    answer = response.content[:300].decode("utf-8", "replace")
    curl = case.as_curl_command(headers=headers)[:600]
    return f"{message}; answered {response.status_code} {answer} (reproduce: {curl})"


def test_every_operation_of_the_spec_is_fuzzed(findings: Findings) -> None:
    assert findings.cases == len(OPERATIONS) * 2 * EXAMPLES


def test_no_answer_departs_from_the_spec(findings: Findings) -> None:
    problems = findings.problems.values()
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(sorted(problems))


def test_the_fuzzing_reached_successful_answers(findings: Findings) -> None:
    """A run answered 400 throughout would prove nothing about the 2xx bodies."""
    assert findings.statuses.get(200, 0) > len(OPERATIONS) * 2


def test_cases_naming_live_objects_reach_successful_answers(findings: Findings) -> None:
    """Made-up ids would check only the 404s, not the 2xx bodies, of every operation on an
    object."""
    short = {}
    for label, statuses in findings.positive.items():
        named = statuses[::2]
        successes = sum(200 <= status < 300 for status in named)
        if "{" in label and successes < LIVE_SUCCESS_SHARE * len(named):
            short[label] = f"{successes} of {len(named)} answered 2xx (statuses {named})"
    assert not short, (
        f"{len(short)} operation(s) on an object answered 2xx to less than "
        f"{LIVE_SUCCESS_SHARE:.0%} of the cases naming live objects:\n"
        + "\n".join(f"{label}: {detail}" for label, detail in sorted(short.items()))
    )


@pytest.mark.parametrize("path", sorted({op.path for op in OPERATIONS.values()}))
def test_a_method_the_path_does_not_serve_is_a_405_naming_the_ones_it_does(
    fuzzed_server: Server, path: str
) -> None:
    served = {op.method.upper() for op in OPERATIONS.values() if op.path == path}
    url = fuzzed_server.base_url + re.sub(r"\{[^}]+\}", "x", path)

    response = httpx.request("TRACE", url, headers={"authorization": f"Bearer {KEY}"})

    assert response.status_code == 405
    allowed = served | ({"HEAD"} if "GET" in served else set())
    assert response.headers["allow"] == ", ".join(sorted(allowed))
    assert response.json() == {
        "error": {
            "message": f"Method TRACE is not allowed on /v1{re.sub(r'{[^}]+}', 'x', path)}.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
