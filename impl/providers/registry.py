"""Which adapter serves which provider kind, and which provider serves a request.

Adding an adapter is one new file in this package plus one line in `KINDS`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping

import aiohttp

from openresponses.config import ProviderConfig
from openresponses.errors import invalid
from openresponses.providers.anthropic import AnthropicProvider
from openresponses.providers.base import Provider
from openresponses.providers.openai_chat import OpenAIChatProvider
from openresponses.providers.openai_responses import OpenAIResponsesProvider

Factory = Callable[[ProviderConfig, aiohttp.ClientSession], Provider]

KINDS: dict[str, Factory] = {
    "openai-chat": OpenAIChatProvider,
    "anthropic": AnthropicProvider,
    "openai-responses": OpenAIResponsesProvider,
}


class Registry:
    """The configured providers, built once per server."""

    def __init__(
        self,
        configs: Mapping[str, ProviderConfig],
        default: str,
        client: aiohttp.ClientSession,
        models_ttl: float = 60.0,
        projects: Mapping[str, Mapping[str, ProviderConfig]] | None = None,
    ) -> None:
        projects = projects or {}
        every = [*configs.values(), *(c for own in projects.values() for c in own.values())]
        unknown = {c.kind for c in every} - set(KINDS)
        if unknown:
            raise ValueError(f"unknown provider kind(s): {sorted(unknown)}; known: {sorted(KINDS)}")
        self.configs = dict(configs)
        self.default = default
        self.providers: dict[str, Provider] = {
            name: KINDS[config.kind](config, client) for name, config in configs.items()
        }
        self._found = [name for name, config in configs.items() if config.found]
        # A project's own providers beside the server's others (see config's [projects]).
        self._projects: dict[str, dict[str, Provider]] = {
            project: {
                **self.providers,
                **{name: KINDS[config.kind](config, client) for name, config in own.items()},
            }
            for project, own in projects.items()
        }
        self._found_for = {
            project: self._found + [name for name in own if name not in self._found]
            for project, own in projects.items()
        }
        self.models_ttl = models_ttl
        self._models: dict[tuple[str, str, str], tuple[float, list[str]]] = {}

    def listed(self, project: str | None = None) -> list[str]:
        """The providers found in the environment or the config file (the project's own
        included): those `/v1/models` lists."""
        return self._found_for.get(project or "", self._found)

    async def list_models(
        self, name: str, api_key: str | None, project: str | None = None
    ) -> list[str]:
        """A provider's models, kept `models_ttl` seconds per provider, project and key:
        listings change rarely and every client asks for them. Failures are not kept."""
        own = project if project in self._projects else ""
        key = (name, own, hashlib.sha256((api_key or "").encode()).hexdigest())
        now = time.monotonic()
        cached = self._models.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        models = await self._projects.get(own, self.providers)[name].list_models(api_key=api_key)
        self._models[key] = (now + self.models_ttl, models)
        return models

    def route(
        self, model: str, header: str | None = None, project: str | None = None
    ) -> tuple[Provider, str]:
        """The provider and upstream model name for a request's `model`, from the providers
        of the project named `project` (the server's, and any of the project's own).

        `provider@model` picks a provider; so does `header`, the `x-model-provider` header
        (then the whole `model` goes upstream); otherwise the default provider gets the model
        as is.
        """
        providers = self._projects.get(project or "", self.providers)
        if header:
            name, upstream = header, model.removeprefix(f"{header}@")
            param = None
        elif "@" in model:
            name, upstream = model.split("@", 1)
            param = "model"
        else:
            return providers[self.default], model
        provider = providers.get(name)
        if provider is None:
            known = ", ".join(sorted(providers))
            raise invalid(
                f"Unknown model provider '{name}'. Configured providers: {known}.",
                param=param,
                code="unknown_provider",
            )
        if not upstream:
            raise invalid("The model name after the provider is empty.", param="model")
        return provider, upstream
