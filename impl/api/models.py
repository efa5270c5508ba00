"""`GET /v1/models`: the models of every reachable provider, as `provider@model` ids.

A provider that cannot be listed (no key, unreachable) is left out rather than failing the
whole listing; the ids returned are exactly what `model` accepts, with the caller project's
own providers. Listings are cached for `OPENRESPONSES_MODELS_TTL` seconds (60 by default) per
provider, project and client key.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from openresponses.api.common import caller, current, json_response, services, unless_gone
from openresponses.errors import APIError
from openresponses.generated import openai_models as m


async def list_models() -> Response:
    req = current()
    registry = services(req).registry
    who = caller(req)
    names = registry.listed(who.project_name)
    listings = await unless_gone(
        req,
        asyncio.gather(
            *(registry.list_models(name, who.upstream_key, who.project_name) for name in names),
            return_exceptions=True,
        ),
    )
    data = []
    for name, listing in zip(names, listings, strict=True):
        if isinstance(listing, APIError):
            continue
        if isinstance(listing, BaseException):
            raise listing
        data += [
            m.Model(id=f"{name}@{model}", object="model", created=0, owned_by=name)
            for model in listing
        ]
    page = m.ListModelsResponse(object="list", data=data)
    return json_response(page.model_dump(mode="json", by_alias=True, exclude_unset=True))
