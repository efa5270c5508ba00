"""codegen: `--check` is what keeps generated/ honest in CI, so it must catch a stale tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _copy_tree(tmp_path: Path) -> Path:
    for name in ("spec", "codegen", "generated"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen", "--check"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_passes_on_the_committed_tree(tmp_path: Path) -> None:
    result = _check(_copy_tree(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "generated/ is up to date"


def test_check_fails_when_the_spec_changed_but_generated_did_not(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    spec = root / "spec" / "openapi.yaml"
    spec.write_text(
        spec.read_text().replace(
            "Unique identifier for this Response.", "Unique identifier for this response (edited)."
        )
    )

    result = _check(root)

    assert result.returncode == 1
    assert "generated/ is stale against spec/: openai_models.py" in result.stdout
