"""What codegen adds to the generated models: named unions, body models, API defaults."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from openresponses.generated import openai_models as m
from openresponses.generated.operations import OPERATIONS


def _members(annotation: Any) -> tuple[Any, ...]:
    """A union's members, through `list[...]` and `Annotated[...]`."""
    args = get_args(annotation)
    while len(args) == 1 or (args and not isinstance(args[0], type)):
        args = get_args(args[0])
    return args


@pytest.mark.parametrize(
    ("alias", "field"),
    [
        (m.ItemResource, m.ResponseItemList.model_fields["data"]),
        (m.OutputItem, m.Response.model_fields["output"]),
        (m.ConversationItem, m.ConversationItemList.model_fields["data"]),
        (m.StreamEvent, m.ResponseStreamEvent.model_fields["root"]),
    ],
)
def test_a_named_union_is_the_union_its_fields_use(alias: Any, field: Any) -> None:
    members = _members(alias)

    assert len(members) > 1
    assert members == _members(field.annotation)


def test_the_operations_table_names_each_request_body_model() -> None:
    assert OPERATIONS["createResponse"].body is m.CreateResponse
    assert OPERATIONS["createFile"].body is m.CreateFileRequest  # a multipart body
    assert OPERATIONS["getResponse"].body is None


def test_a_function_tool_may_leave_out_parameters_and_strict() -> None:
    tool = m.FunctionTool.model_validate({"type": "function", "name": "f"})

    assert (tool.parameters, tool.strict) == (None, None)
