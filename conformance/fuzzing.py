"""Fuzzing the Responses API operations of OpenAI's spec with schemathesis (`--fuzz`).

The other checks send requests a person wrote; this one sends what hypothesis makes of the
spec's request schemas, valid and invalid alike, to find the inputs nobody thought of. Whatever
comes in, a server must answer without a 5xx and as the spec documents: a documented status
and content type and, in the OpenAI dialect, a JSON body that matches the response schema.

schemathesis and hypothesis come with the `conformance` extra only: nothing imports this module
but the `fuzz.operations` check, when it runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.openapi.checks import JsonSchemaError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from openresponses.conformance.context import Context, listing
from openresponses.conformance.outcomes import fail
from openresponses.conformance.schemas import OPENAI, json_path
from openresponses.conformance.wire import Dialect

MAX_FINDINGS = 10
"""Distinct findings after which fuzzing stops: more would repeat the same bugs."""

EXCERPT = 200

SCOPE = ("/responses", "/chat/completions", "/models")
"""The paths fuzzed: the Responses API surface the harness is about. The spec also holds the
files, embeddings and vector store operations this server serves; the harness does not judge
other targets by them (their own tests drive them here)."""

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
FuzzCase = schemathesis.Case[Operation]


@dataclass
class Fuzzing:
    """What one run has sent and found; findings are keyed so a bug hit by many cases is
    reported once."""

    cases: int = 0
    findings: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return len(self.findings) >= MAX_FINDINGS

    def add(self, operation: str, kind: str, reason: str) -> None:
        self.findings.setdefault((operation, kind), f"{operation}: {reason}")


def operations(ctx: Context) -> str:
    """Fuzzes every operation in `SCOPE`; fails with the findings, else says what was sent."""
    # A fresh config, so a schemathesis.toml in the working directory cannot change the run.
    schema = schemathesis.openapi.from_dict(
        copy.deepcopy(OPENAI.spec), config=schemathesis.Config()
    )
    run = Fuzzing()
    count = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            fail(f"generated/openai.json: an operation cannot be fuzzed: {result.err()}")
        if not result.ok().path.startswith(SCOPE):
            continue
        count += 1
        for mode in schemathesis.GenerationMode:
            if not run.done:
                _fuzz(ctx, result.ok(), mode, run)
    if run.findings:
        found = list(run.findings.values())
        fail(f"{len(found)} finding(s) in {run.cases} cases: {listing(found, MAX_FINDINGS)}")
    return f"{count} operations, {run.cases} cases, no 5xx, all answers conform"


def _fuzz(
    ctx: Context,
    operation: Operation,
    mode: schemathesis.GenerationMode,
    run: Fuzzing,
) -> None:
    """Sends `ctx.fuzz_examples` generated cases of one operation; the same ones every time
    (derandomized, no example database), so a finding can be reproduced by running again."""

    @settings(
        max_examples=ctx.fuzz_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],  # findings are collected, never raised, so nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def send(case: FuzzCase) -> None:
        if not run.done:
            _send(ctx, case, mode, run)

    send()


def _send(ctx: Context, case: FuzzCase, mode: schemathesis.GenerationMode, run: Fuzzing) -> None:
    """Sends one case as the harness's other requests go (the target's key and headers, the
    dialect's version header) and judges the answer."""
    label = case.operation.label
    # The target's key replaces a generated one; without a key, none is sent (as elsewhere).
    for name in [name for name in case.headers or {} if name.lower() == "authorization"]:
        del case.headers[name]
    if mode.is_positive and isinstance(case.body, dict) and "model" in case.body:
        # A made-up model name fails upstream, legitimately; the target's reaches a real route.
        case.body["model"] = ctx.target.model
    headers = _headers(ctx)
    run.cases += 1
    try:
        response = case.call(
            base_url=ctx.target.base_url, headers=headers, timeout=ctx.target.timeout
        )
    except OSError as exc:  # requests' errors are OSErrors: refused, reset, timed out
        run.add(label, "transport", f"no answer ({type(exc).__name__}: {_short(str(exc))})")
        return
    curl = case.as_curl_command(headers=headers)
    if response.status_code >= 500:
        excerpt = _short(response.content.decode("utf-8", "replace"))
        run.add(label, f"status {response.status_code}",
                f"HTTP {response.status_code}: {excerpt} (reproduce: {curl})")  # fmt: skip
        return
    try:
        case.validate_response(response, checks=_checks(ctx, response), headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            run.add(label, failure.title, f"{_describe(failure)} (reproduce: {curl})")


def _headers(ctx: Context) -> dict[str, str]:
    """The headers `wire.Client` sends, so fuzzed requests reach the target as the others do."""
    headers = {
        "user-agent": "openresponses-conformance",
        **ctx.target.dialect_headers(ctx.dialect),
        **ctx.target.headers,
    }
    if ctx.target.api_key:
        headers["authorization"] = f"Bearer {ctx.target.api_key}"
    return headers


def _checks(ctx: Context, response: schemathesis.Response) -> list[schemathesis.CheckFunction]:
    """The judgements that apply to this answer.

    Bodies are held to OpenAI's schemas only in the OpenAI dialect (the Open Responses one
    shapes them by its own spec, with other error types), and only JSON bodies: streams are
    judged event by event by the `stream.*` checks, which know both dialects' framing.
    """
    checks: list[schemathesis.CheckFunction] = [status_code_conformance, content_type_conformance]
    content_type = (response.headers.get("content-type") or [""])[0]
    if ctx.dialect is Dialect.OPENAI and _media_type(content_type) == "application/json":
        checks.append(response_schema_conformance)
    return checks


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _describe(failure: Failure) -> str:
    """A failure on one line: where a body departs from its schema, else schemathesis's gist."""
    if isinstance(failure, JsonSchemaError):
        return (
            f"{failure.title} at {json_path(failure.instance_path)}: {failure.validation_message}"
        )
    return f"{failure.title}: {_short(failure.message)}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"
