"""The conformance harness: it passes our server, and each check fails when its rule is broken."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from openresponses.conformance import fuzzing, runner
from openresponses.conformance.checks import fuzz
from openresponses.conformance.wire import Dialect, Target
from openresponses.generated.operations import OPERATIONS
from tests import conformance_model
from tests.broken_target import BrokenTarget
from tests.conftest import Server, server_env
from tests.upstream import ScriptedUpstream

OPENAI, SPEC = Dialect.OPENAI, Dialect.OPENRESPONSES
MODEL = "conformance-model"
ADVISORIES = {
    "openresponses/stream.event_names",  # OpenAI's response.reasoning_text.* by default
    "openresponses/errors.type_names",  # OpenAI's invalid_request_error by default
}
"""What the default server departs from without breaking the spec (see the README's
dialect section): the header or `--dialect openresponses` gives the spec's spellings."""


@pytest.fixture(scope="session")
def model(upstream: ScriptedUpstream) -> str:
    return upstream.responder(conformance_model.answer, MODEL)


@pytest.fixture(scope="session")
def broken(server: Server) -> Iterator[BrokenTarget]:
    target = BrokenTarget(server.url).start()
    yield target
    target.stop()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "openresponses"
    return subprocess.run(
        [str(command), "conformance", *args], capture_output=True, text=True, timeout=300
    )


def test_our_server_passes_every_check_it_implements(
    server: Server, model: str, tmp_path: Path
) -> None:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"

    done = _cli(
        "--base-url", server.base_url, "--model", model, "--api-key", "sk-client",
        "--timeout", "20", "--report", str(report), "--junit", str(junit), "--fuzz",
    )  # fmt: skip

    checks = json.loads(report.read_text())["checks"]
    by_status: dict[str, set[str]] = {"pass": set(), "fail": set(), "skip": set(), "warn": set()}
    for entry in checks:
        by_status[entry["status"]].add(entry["id"])
    assert by_status["fail"] == set(), done.stdout
    assert by_status["skip"] == {
        "openai/errors.authentication",  # the server forwards the client's key upstream
        "openresponses/errors.authentication",
    }
    assert by_status["warn"] == ADVISORIES
    assert len({entry["check"] for entry in checks}) >= 20
    fuzzed = [entry["message"] for entry in checks if entry["check"] == "fuzz.operations"]
    # every operation in the fuzzing's scope, in both generation modes
    operations = sum(op.path.startswith(fuzzing.SCOPE) for op in OPERATIONS.values())
    cases = operations * 2 * fuzz.EXAMPLES
    assert fuzzed == [f"{operations} operations, {cases} cases, no 5xx, all answers conform"] * 2
    assert done.returncode == 0  # warnings fail nothing


def test_the_json_report_names_target_checks_and_summary(
    broken: BrokenTarget, model: str, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"

    done = _cli(
        "--base-url", broken.base_url, "--model", model, "--dialect", "openresponses",
        "--header", "x-break:object", "--only", "response.basic",
        "--only", "errors.missing_model", "--report", str(report),
    )  # fmt: skip

    data = json.loads(report.read_text())
    assert data["target"] == {"base_url": broken.base_url, "model": model}
    assert [c["id"] for c in data["checks"]] == [
        "openresponses/response.basic",
        "openresponses/errors.missing_model",
    ]
    failed, passed = data["checks"]
    assert passed == {
        "id": "openresponses/errors.missing_model",
        "check": "errors.missing_model",
        "dialect": "openresponses",
        "title": "Missing model → 400 invalid request",
        "status": "pass",
        "message": "invalid_request_error: Missing required parameter: 'model'.",
        "spec_ref": "Open Responses 2026-04-24 §Errors",
        "seconds": passed["seconds"],
    }
    assert failed["status"] == "fail"
    assert (
        failed["message"]
        == "ResponseResource violated: $.object: 'resp' is not one of ['response']"
    )
    assert data["summary"] == {
        "total": 2, "passed": 1, "failed": 1, "skipped": 0, "warned": 0,
        "seconds": data["summary"]["seconds"],
    }  # fmt: skip
    assert done.returncode == 1


def test_the_junit_report_has_a_testcase_per_check(
    broken: BrokenTarget, model: str, tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"

    _cli(
        "--base-url", broken.base_url, "--model", model, "--dialect", "openai",
        "--header", "x-break:object", "--only", "errors.missing_model", "--only", "response.basic",
        "--only", "errors.authentication", "--junit", str(junit),
    )  # fmt: skip

    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {
        "errors.missing_model: Missing model → 400 invalid request",
        "response.basic: Basic text response",
        "errors.authentication: A wrong API key → 401",
    }
    failure = cases["response.basic: Basic text response"]
    assert failure.find("failure") is not None


def test_exit_status_is_zero_when_every_selected_check_passes(server: Server, model: str) -> None:
    done = _cli("--base-url", server.base_url, "--model", model, "--only", "stream.*")

    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["check", "status", "why"]
    assert any(line.startswith("openresponses/stream.lifecycle ") and " pass " in line
               for line in lines)  # fmt: skip
    # the default server's reasoning events carry OpenAI's names: an advisory, not a failure
    assert any(line.startswith("openresponses/stream.event_names ") and " warn " in line
               for line in lines)  # fmt: skip
    assert lines[-1].startswith("22 passed, 0 failed, 0 skipped, 1 warned of 23 checks")


def test_a_warning_is_reported_in_every_format_and_fails_nothing(
    server: Server, model: str, tmp_path: Path
) -> None:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"

    done = _cli(
        "--base-url", server.base_url, "--model", model,
        "--only", "openresponses/errors.type_names", "--report", str(report), "--junit", str(junit),
    )  # fmt: skip

    message = (
        "OpenAI's spelling 'invalid_request_error' for HTTP 400, 'invalid_request_error' for "
        "HTTP 404 where the spec's table names 'invalid_request', 'not_found': allowed by the "
        "spec's schema, but a client that follows the table misses it"
    )
    assert done.returncode == 0
    assert done.stdout.splitlines()[2].split()[:3] == [
        "openresponses/errors.type_names", "warn", "OpenAI's"
    ]  # fmt: skip
    (entry,) = json.loads(report.read_text())["checks"]
    assert (entry["status"], entry["message"]) == ("warn", message)
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "0")
    (case,) = suite.iter("testcase")
    assert [(p.get("name"), p.get("value")) for p in case.iter("property")] == [
        ("outcome", "warning")
    ]
    assert case.findtext("system-out") == (
        f"warning: {message}\n\nspec: Open Responses 2026-04-24 §Errors (Error Types)"
    )


def test_the_version_header_option_reaches_a_strict_mode(server: Server, model: str) -> None:
    done = _cli(
        "--base-url", server.base_url, "--model", model, "--version-header",
        "--only", "openresponses/errors.type_names", "--only", "openresponses/stream.event_names",
    )  # fmt: skip

    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1].startswith("2 passed, 0 failed, 0 skipped, 0 warned")


def test_bad_usage_exits_with_status_2(server: Server) -> None:
    nothing = _cli("--base-url", server.base_url, "--only", "no.such.check")
    bad_header = _cli("--base-url", server.base_url, "--header", "no-colon")
    no_examples = _cli("--base-url", server.base_url, "--fuzz", "--fuzz-examples", "0")

    assert (nothing.returncode, bad_header.returncode, no_examples.returncode) == (2, 2, 2)
    assert "no check matches --only" in nothing.stderr
    assert "--header wants NAME:VALUE" in bad_header.stderr
    assert "--fuzz-examples wants a positive number" in no_examples.stderr


def test_list_names_every_selected_check(server: Server) -> None:
    done = _cli("--base-url", server.base_url, "--list", "--only", "openresponses/websocket.*")

    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == [f"openresponses/{c}" for c in runner.CHECKS if c.startswith("websocket.")]
    assert len(names) == 7


# --- Each check fails when its rule is broken ----------------------------------------------


def _run(
    target_url: str, model: str, dialect: Dialect, check: str, **headers: str
) -> runner.Result:
    target = Target(target_url, model, "sk-client", headers, timeout=20)
    (result,) = runner.run(target, runner.select([dialect], [check]))
    return result


def test_the_proxy_alone_breaks_nothing(broken: BrokenTarget, model: str) -> None:
    target = Target(broken.base_url, model, "sk-client", {}, timeout=20)
    results = runner.run(target, runner.select(list(Dialect), ["stream.*", "errors.*"]))

    failed = [(r.id, r.message) for r in results if r.status == runner.FAIL]
    assert failed == []


BROKEN = [
    # (mutation, dialect, check, what the failure message must say)
    ("object", SPEC, "response.basic", "$.object: 'resp' is not one of ['response']"),
    ("no_created_at", OPENAI, "response.basic", "$: 'created_at' is a required property"),
    ("status_type", SPEC, "response.string_input", "$.status: 1 is not of type 'string'"),
    ("no_output", SPEC, "response.basic", "the response has no output items"),
    ("no_output", OPENAI, "tools.function_call", "no function_call item in the output"),
    ("wrong_instructions", OPENAI, "response.instructions", "$.instructions is 'something else'"),
    ("usage_total", SPEC, "response.usage", "token counts are not non-negative integers"),
    ("spoil_delta", SPEC, "stream.delta_assembly", "the deltas say"),
    ("sequence", OPENAI, "stream.sequence_numbers", "sequence_number 1 does not increase on 1"),
    ("sequence_reset", SPEC, "stream.sequence_numbers", "sequence_number 0 does not increase"),
    ("no_part_added", OPENAI, "stream.content_parts", "delta for content_index 0 of 'rs_"),
    ("item_done_early", SPEC, "stream.content_parts", "is done with its content_index 0 open"),
    ("item_twice", SPEC, "stream.item_lifecycle", "is used twice"),
    ("final_output", SPEC, "stream.final_output", "$: 2 items expected, got 0"),
    ("no_created", SPEC, "stream.lifecycle", "the stream starts with response.in_progress"),
    ("no_item_done", OPENAI, "stream.item_lifecycle", "was added but never done"),
    ("no_terminal", SPEC, "stream.lifecycle", "ended without a terminal event"),
    ("terminal_status", OPENAI, "stream.lifecycle", "carries status 'in_progress'"),
    ("text_outside_part", SPEC, "stream.content_parts", "is outside an open part"),
    ("item_status", SPEC, "stream.event_schemas", "$.item.status: 'finished' is not one of"),
    ("event_name", SPEC, "stream.wire_format", "event: response.bogus but type"),
    ("no_done", SPEC, "stream.wire_format", "does not end with data: [DONE]"),
    ("two_data_lines", SPEC, "stream.wire_format", "data: lines, not one"),
    ("problem_json", OPENAI, "errors.missing_model", "application/problem+json"),
    ("error_type", SPEC, "errors.unknown_response", "$.error.type is 'bad_request'"),
    ("status_500", OPENAI, "errors.malformed_json", "got POST /responses → 500"),
    ("no_param", SPEC, "errors.missing_model", "$.error lacks param"),
    ("no_store", SPEC, "response.basic", "$: 'store' is a required property"),
    ("no_store", SPEC, "state.retrieve", "$: 'store' is a required property"),
    ("no_store", SPEC, "stream.event_schemas", "$.response: 'store' is a required property"),
    ("no_store", SPEC, "stream.terminal_response_schema", "$: 'store' is a required property"),
    ("accept_call_id", OPENAI, "tools.unmatched_call_id", "inline: the unmatched call_id was"),
    ("accept_call_id", SPEC, "tools.unmatched_call_id", "inline: the unmatched call_id was"),
]


@pytest.mark.parametrize(
    ("mutation", "dialect", "check", "message"),
    BROKEN,
    ids=[f"{m}-{c}" for m, _, c, _ in BROKEN],
)
def test_a_broken_rule_fails_its_check(
    broken: BrokenTarget, model: str, mutation: str, dialect: Dialect, check: str, message: str
) -> None:
    result = _run(broken.base_url, model, dialect, check, **{"x-break": mutation})

    assert result.status == runner.FAIL
    assert message in result.message


def test_a_websocket_server_refusing_stream_true_gets_a_warning_not_a_failure(
    broken: BrokenTarget, model: str
) -> None:
    result = _run(
        broken.base_url, model, SPEC, "websocket.transport_fields", **{"x-break": "refuse_stream"}
    )

    assert (result.status, result.message) == (
        runner.WARN,
        "stream: true was refused (400 unsupported_parameter): the OpenAI Agents SDK's "
        "WebSocket transport sends it in every response.create, so that client cannot use "
        "this server",
    )


def test_a_websocket_server_accepting_stream_true_passes(broken: BrokenTarget, model: str) -> None:
    result = _run(
        broken.base_url, model, SPEC, "websocket.transport_fields", **{"x-break": "relay"}
    )

    assert (result.status, result.message) == (
        runner.PASS,
        "stream: true accepted, background: true refused",
    )


def test_id_lines_pass_with_a_note_since_the_spec_only_discourages_them(
    broken: BrokenTarget, model: str
) -> None:
    result = _run(broken.base_url, model, SPEC, "stream.wire_format", **{"x-break": "id_lines"})

    assert result.status == runner.PASS
    assert result.message.endswith(
        "note: id: lines present (the spec says servers SHOULD NOT use them)"
    )


def test_websocket_checks_are_skipped_when_the_target_has_no_websocket_mode(
    broken: BrokenTarget, model: str
) -> None:
    target = Target(broken.base_url, model, "sk-client", {}, timeout=20)  # HTTP-only proxy

    results = runner.run(target, runner.select([SPEC], ["websocket.*"]))

    assert {(r.status, r.message) for r in results} == {
        (runner.SKIP, "the target does not offer WebSocket mode (the upgrade got HTTP 403)")
    }
    assert len(results) == 7


def test_authentication_is_checked_against_a_server_with_keys_of_its_own(
    upstream: ScriptedUpstream, model: str, tmp_path: Path
) -> None:
    server = Server(tmp_path, server_env(upstream, OPENRESPONSES_API_KEYS="sk-ours")).start()
    try:
        target = Target(server.base_url, model, "sk-ours", {}, timeout=20)
        results = runner.run(target, runner.select(list(Dialect), ["errors.authentication"]))
    finally:
        server.stop()

    assert [(r.id, r.status) for r in results] == [
        ("openai/errors.authentication", runner.PASS),
        ("openresponses/errors.authentication", runner.PASS),
    ]
