"""The conversation the model would read, checked before any model is called.

A tool output must answer a call made earlier in the context, and an MCP approval must
answer a request made earlier: OpenAI refuses a context that breaks either rule with a 400.
Forwarded, such a context draws a provider's error in its own words at best, and is read as
something else at worst, so the server refuses it first, whatever the provider would do.
(Item references and reasoning items without content are resolved, or refused, when the
input is read: `core.intake`.)
"""

from __future__ import annotations

from collections.abc import Sequence

from openresponses.errors import APIError, invalid
from openresponses.generated import openai_models as m
from openresponses.items import Item


def check(history: Sequence[Item], items: Sequence[Item], *, history_param: str) -> None:
    """Refuse a context (`history`, then the request's input `items`) in which an output
    answers no earlier call or request. The error's `param` names the input item at fault
    (`input[2].call_id`), or `history_param` when the fault is in the history (a conversation's
    items may have been added through the conversations API)."""
    calls: set[str] = set()
    requests: set[str] = set()
    for index, item in enumerate([*history, *items]):
        if isinstance(item, m.FunctionToolCall | m.FunctionToolCallResource):
            calls.add(item.call_id)
        elif isinstance(item, m.MCPApprovalRequest):
            requests.add(item.id)
        elif isinstance(item, m.FunctionToolCallOutputResource) and item.call_id not in calls:
            message = f"No tool call found for function call output with call_id {item.call_id}."
            raise _fault(message, index, len(history), history_param, "call_id")
        elif (
            isinstance(item, m.MCPApprovalResponseResource)
            and item.approval_request_id not in requests
        ):
            message = (
                "No approval request found for MCP approval response with approval_request_id "
                f"{item.approval_request_id}."
            )
            raise _fault(message, index, len(history), history_param, "approval_request_id")


def _fault(message: str, index: int, history: int, history_param: str, field: str) -> APIError:
    # OpenAI's own errors for these carry no code.
    param = history_param if index < history else f"input[{index - history}].{field}"
    return invalid(message, param=param)
