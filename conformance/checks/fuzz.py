"""Fuzzing with schemathesis (`--fuzz`): the check's declaration. The fuzzing itself is in
`conformance/fuzzing.py`, imported only when the check runs, because schemathesis and
hypothesis come with the `conformance` extra, not with the server."""

from __future__ import annotations

from importlib import import_module

from openresponses.conformance.checks.common import OPENAI_REF
from openresponses.conformance.context import Context
from openresponses.conformance.registry import check

EXAMPLES = 15
"""Default cases per operation and generation mode: enough to find crashes, few enough for a
minute."""

EXTRA = ("schemathesis", "hypothesis")
INSTALL = "pip install 'openresponses[conformance]'"


def missing() -> str | None:
    """The first of the extra's packages that cannot be imported, None when fuzzing can run."""
    try:
        import_module("openresponses.conformance.fuzzing")
    except ModuleNotFoundError as exc:
        name = (exc.name or "").partition(".")[0]
        if name in EXTRA:
            return name
        raise
    return None


@check(
    "fuzz.operations",
    "Fuzzing: no 5xx, answers conform to the spec",
    f"{OPENAI_REF}: every Responses API operation of generated/openai.json",
    fuzz=True,
)
def operations(ctx: Context) -> str:
    from openresponses.conformance import fuzzing  # needs the extra: see the module's docstring

    return fuzzing.operations(ctx)
