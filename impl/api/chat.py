"""`POST /v1/chat/completions`: validated, routed, and forwarded to the provider as-is.

The body is checked against the generated `CreateChatCompletionRequest` (so a bad request is
our 400, not an upstream surprise), then forwarded with only `model` rewritten; the
upstream's answer, streamed or not, is relayed byte for byte.
"""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from openresponses.api.common import current, read_body, services
from openresponses.core.runner import client_key
from openresponses.generated import openai_models as m


async def create_chat_completion() -> Response:
    req = current()
    body = await read_body(req, m.CreateChatCompletionRequest)
    provider, upstream_model = services(req).registry.route(str(body.model), req.headers)
    forwarded = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    forwarded["model"] = upstream_model
    reply = await provider.chat_completions(
        forwarded, api_key=client_key(services(req), req.headers)
    )
    return StreamingResponse(reply.body, status_code=reply.status, media_type=reply.content_type)
