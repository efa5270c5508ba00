"""The server installs without the fuzzing harness (schemathesis, hypothesis): they are the
`conformance` extra, and `--fuzz` without them says how to get them."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import requires

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HARNESS = {"schemathesis", "hypothesis"}


def _required(extra: str) -> set[str]:
    """What installing openresponses brings, with `extra` ("" for none), as declared."""
    names = set()
    for line in requires("openresponses") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
            names.add(canonicalize_name(requirement.name))
    return names


def _without(blocked: set[str], code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a Python where importing any of `blocked` fails, as if not installed."""
    block = "".join(f"sys.modules[{name!r}] = None; " for name in sorted(blocked))
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {block}{code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_server_requires_no_fuzzing_harness_and_the_extra_brings_it() -> None:
    assert not HARNESS & _required("")
    assert _required("conformance") >= HARNESS


def test_the_server_and_the_other_checks_import_without_the_harness() -> None:
    imports = "import openresponses.app, openresponses.cli, openresponses.conformance.runner"
    result = _without(HARNESS, imports)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(HARNESS))
def test_fuzz_without_the_extra_says_how_to_install_it(missing: str) -> None:
    argv = ["openresponses", "conformance", "--fuzz", "--base-url", "http://127.0.0.1:1/v1"]
    cli = f"from openresponses.cli import main; sys.argv = {argv!r}; sys.exit(main())"
    result = _without({missing}, cli)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"openresponses conformance: --fuzz needs {missing}, which the conformance extra "
        "installs: pip install 'openresponses[conformance]'\n"
    )
