"""Results as a table for people, JSON for programs and JUnit XML for CI systems."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from openresponses.conformance.runner import FAIL, PASS, SKIP, WARN, Result
from openresponses.conformance.wire import Target

_MARK = {PASS: "pass", FAIL: "FAIL", SKIP: "skip", WARN: "warn"}


def summary(results: list[Result]) -> dict[str, Any]:
    counts = Counter(result.status for result in results)
    return {
        "total": len(results),
        "passed": counts[PASS],
        "failed": counts[FAIL],
        "skipped": counts[SKIP],
        "warned": counts[WARN],
        "seconds": round(sum(result.seconds for result in results), 3),
    }


def table(results: list[Result], width: int | None = None) -> str:
    """One line per check: id, status, and why (cut to the terminal's width)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    id_width = max((len(result.id) for result in results), default=5)
    lines = [f"{'check':<{id_width}}  status  why", f"{'-' * id_width}  ------  ---"]
    room = max(20, width - id_width - 10)
    for result in results:
        why = " ".join(result.message.split())
        why = why if len(why) <= room else why[: room - 1] + "…"
        lines.append(f"{result.id:<{id_width}}  {_MARK[result.status]:<6}  {why}")
    totals = summary(results)
    lines.append("")
    lines.append(
        f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped, "
        f"{totals['warned']} warned of {totals['total']} checks in {totals['seconds']:.1f} s"
    )
    return "\n".join(lines)


def as_json(target: Target, results: list[Result]) -> dict[str, Any]:
    return {
        "target": {"base_url": target.base_url, "model": target.model},
        "checks": [
            {
                "id": result.id,
                "check": result.check.id,
                "dialect": result.dialect.value,
                "title": result.title,
                "status": result.status,
                "message": result.message,
                "spec_ref": result.check.spec_ref,
                "seconds": round(result.seconds, 3),
            }
            for result in results
        ],
        "summary": summary(results),
    }


def write_json(path: Path, target: Target, results: list[Result]) -> None:
    path.write_text(json.dumps(as_json(target, results), indent=2) + "\n", encoding="utf-8")


def junit(target: Target, results: list[Result]) -> ElementTree.ElementTree:
    totals = summary(results)
    suites = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name=f"openresponses conformance: {target.base_url}",
        tests=str(totals["total"]),
        failures=str(totals["failed"]),
        skipped=str(totals["skipped"]),
        errors="0",
        time=f"{totals['seconds']:.3f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"conformance.{result.dialect.value}",
            name=f"{result.check.id}: {result.title}",
            time=f"{result.seconds:.3f}",
        )
        if result.status == FAIL:
            failure = ElementTree.SubElement(case, "failure", message=result.message[:500])
            failure.text = f"{result.message}\n\nspec: {result.check.spec_ref}"
        elif result.status == SKIP:
            ElementTree.SubElement(case, "skipped", message=result.message)
        elif result.status == WARN:
            # JUnit has no warning outcome: a passing case that says so, in a property for
            # tools that read them and in the case's output for people.
            properties = ElementTree.SubElement(case, "properties")
            ElementTree.SubElement(properties, "property", name="outcome", value="warning")
            output = ElementTree.SubElement(case, "system-out")
            output.text = f"warning: {result.message}\n\nspec: {result.check.spec_ref}"
    ElementTree.indent(suites)
    return ElementTree.ElementTree(suites)


def write_junit(path: Path, target: Target, results: list[Result]) -> None:
    junit(target, results).write(path, encoding="utf-8", xml_declaration=True)
