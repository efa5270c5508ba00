"""Assemble `spec/` from the upstream specifications.

The upstream specs are large (OpenAI's declares 1,422 schemas). We serve a subset, so the
assembled `spec/openapi.yaml` holds exactly the operations listed in `spec/assembly.yaml`
and the schemas they reach, under their upstream names and otherwise untouched. Every
change a tool needs (discriminator mappings, OpenAPI 3.0 for connexion) happens later, in
`codegen.normalize`, so a reader can diff `spec/` against upstream and see only selection.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from .paths import SPEC_DIR

HEADER = (
    "# Assembled by `python -m codegen assemble` from the upstream specs in spec/SOURCES.md.\n"
    "# Do not edit: change spec/assembly.yaml and assemble again.\n"
)

# Error envelope added to every operation: OpenAI declares errors only on some operations,
# but every operation of ours can fail, and always in this shape.
ERROR_RESPONSE: dict[str, Any] = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def _load_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)


def _refs(node: Any, kind: str) -> set[str]:
    """Names of `#/components/<kind>/…` references anywhere under `node`."""
    prefix = f"#/components/{kind}/"
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                found.add(ref[len(prefix) :])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _closure(roots: Any, schemas: dict[str, Any]) -> list[str]:
    """Every schema reachable from `roots`, sorted for a stable file."""
    seen: set[str] = set()
    todo = list(_refs(roots, "schemas"))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name], "schemas") - seen)
    return sorted(seen)


def _wrap_bare_errors(responses: dict[str, Any]) -> dict[str, Any]:
    """Declares error responses given as a bare `Error` as `ErrorResponse`, the wrapped shape
    the API sends (`deleteResponse`'s 404 says `Error`, but OpenAI answers `{"error": {...}}`)."""
    bare = {"$ref": "#/components/schemas/Error"}
    wrapped = copy.deepcopy(ERROR_RESPONSE["content"])
    return {
        status: {**answer, "content": wrapped}
        if answer.get("content", {}).get("application/json", {}).get("schema") == bare
        else answer
        for status, answer in responses.items()
    }


def select_operations(spec: dict[str, Any], operation_ids: list[str]) -> dict[str, Any]:
    """The sub-spec serving `operation_ids`, with the schemas and responses they use."""
    wanted = set(operation_ids)
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        if "?" in path:  # OpenAI's `?beta=true` duplicates of the same operations
            continue
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") in wanted:
                op = dict(op)
                op["responses"] = {**_wrap_bare_errors(op["responses"]), "default": ERROR_RESPONSE}
                paths.setdefault(path, {})[method] = op
                wanted.discard(op["operationId"])
    if wanted:
        raise SystemExit(f"operations not found upstream: {sorted(wanted)}")
    responses = {
        name: spec["components"]["responses"][name] for name in sorted(_refs(paths, "responses"))
    }
    roots = [paths, responses, {"$ref": "#/components/schemas/ErrorResponse"}]
    schemas = spec["components"]["schemas"]
    return {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "title": "openresponses (OpenAI-compatible surface)"},
        "servers": [{"url": "/v1"}],
        "paths": paths,
        "components": {
            "schemas": {name: schemas[name] for name in _closure(roots, schemas)},
            "responses": responses,
            "securitySchemes": spec["components"].get("securitySchemes", {}),
        },
        "security": spec.get("security", []),
    }


def assemble(sources: Path) -> None:
    """Rebuild `spec/openapi.yaml` and `spec/openresponses/` from `sources`."""
    plan = _load_yaml(SPEC_DIR / "assembly.yaml")
    openai = _load_yaml(sources / plan["openai"]["source"])
    selected = select_operations(openai, plan["openai"]["operations"])
    text = yaml.safe_dump(selected, sort_keys=False, allow_unicode=True, width=100)
    (SPEC_DIR / "openapi.yaml").write_text(HEADER + text, encoding="utf-8")

    target = SPEC_DIR / "openresponses"
    target.mkdir(exist_ok=True)
    shutil.copyfile(sources / plan["openresponses"]["source"], target / "openapi.json")
    examples = target / "examples"
    examples.mkdir(exist_ok=True)
    for example in sorted((sources / plan["openresponses"]["examples"]).glob("*.json")):
        json.loads(example.read_text(encoding="utf-8"))  # refuse to copy a broken fixture
        shutil.copyfile(example, examples / example.name)
