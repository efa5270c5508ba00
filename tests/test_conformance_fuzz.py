"""`fuzz.operations`: schemathesis fuzzing finds a broken target's bugs and says how to
reproduce each. (That it passes our server is `test_conformance.py`'s full run.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from openresponses.conformance import fuzzing, runner
from openresponses.conformance.wire import Dialect, Target
from openresponses.generated.operations import OPERATIONS as GENERATED_OPERATIONS
from tests import conformance_model
from tests.conftest import Server
from tests.loopback import LoopbackServer
from tests.upstream import ScriptedUpstream

OPERATIONS = sum(op.path.startswith(fuzzing.SCOPE) for op in GENERATED_OPERATIONS.values())
"""The Responses API operations `spec/openapi.yaml` serves (the ones fuzzed), each with valid and
invalid cases."""

EXAMPLES = 5
CASES = OPERATIONS * 2 * EXAMPLES


@pytest.fixture(scope="module")
def model(upstream: ScriptedUpstream) -> str:
    return upstream.responder(conformance_model.answer, "fuzz-model")


def _fuzz(base_url: str, model: str, dialect: Dialect) -> runner.Result:
    target = Target(base_url, model, "sk-client", {}, timeout=20)
    (result,) = runner.run(
        target, runner.select([dialect], ["fuzz.operations"]), fuzz_examples=EXAMPLES
    )
    return result


async def _broken_target(scope: Scope, receive: Receive, send: Send) -> None:
    """A target with three kinds of bug, on every path (no router that could answer 404):
    its model list breaks its schema, DELETE answers in plain text, anything else crashes."""
    request = Request(scope, receive)
    if request.url.path == "/v1/models":
        answer = Response('{"object": "list", "data": "none"}', media_type="application/json")
    elif request.method == "DELETE":
        answer = Response("Not Found", 404, media_type="text/plain")
    else:
        answer = Response("Internal Server Error", 500, media_type="text/plain")
    await answer(scope, receive, send)


@pytest.fixture(scope="module")
def broken() -> Iterator[str]:
    server = LoopbackServer(_broken_target, name="fuzz-broken-target")
    server.start()
    yield f"{server.url}/v1"
    server.stop()


def test_fuzz_is_skipped_unless_asked_for(server: Server, model: str) -> None:
    target = Target(server.base_url, model, "sk-client", {}, timeout=20)
    (result,) = runner.run(target, runner.select([Dialect.OPENAI], ["fuzz.operations"]))

    assert result.status == runner.SKIP


@pytest.fixture(scope="module")
def findings(broken: str) -> runner.Result:
    return _fuzz(broken, "any-model", Dialect.OPENAI)


CRASHING = [
    "POST /responses",
    "GET /responses/{response_id}",
    "GET /responses/{response_id}/input_items",
    "POST /responses/compact",
    "POST /responses/input_tokens",
    "POST /chat/completions",
]


def test_a_target_with_bugs_fails_after_sending_every_case(findings: runner.Result) -> None:
    assert findings.status == runner.FAIL
    assert findings.message.startswith(f"{OPERATIONS} finding(s) in {CASES} cases: ")


@pytest.mark.parametrize("operation", CRASHING)
def test_each_crashing_operation_is_reported_once_with_a_curl_that_reproduces_it(
    findings: runner.Result, broken: str, operation: str
) -> None:
    method, path = operation.split()
    finding = f"{operation}: HTTP 500: Internal Server Error (reproduce: curl -X {method} "

    assert findings.message.count(finding) == 1
    assert f"{broken}{path.replace('{response_id}', '0')})" in findings.message


def test_a_body_that_breaks_its_schema_is_a_finding_with_its_json_path(
    findings: runner.Result,
) -> None:
    assert 'GET /models: Response violates schema at $.data: "none" is not of type "array"' in (
        findings.message
    )


def test_an_undocumented_content_type_is_a_finding(findings: runner.Result) -> None:
    assert (
        "DELETE /responses/{response_id}: Undocumented Content-Type: "
        "Received: text/plain; charset=utf-8 Documented: application/json"
    ) in findings.message


def test_findings_never_show_the_api_key(findings: runner.Result) -> None:
    assert "sk-client" not in findings.message
    assert "authorization: [Filtered]" in findings.message
