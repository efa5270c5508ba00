"""The web search backends (tools/web/), called in-process against a loopback fake of
each API that answers in the API's real JSON shape (tests/fixtures/web_search/): the request
each backend sends, the results it reads back, and every way a backend can fail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import aiohttp
import pytest

from openresponses.config import WEB_SEARCH_BACKENDS, WebSearchConfig, load_settings
from openresponses.errors import ErrorKind
from openresponses.generated import openai_models as m
from openresponses.tools.web import (
    ContextSize,
    UserLocation,
    WebResult,
    WebSearchError,
    backend_from_settings,
    not_configured,
)
from openresponses.tools.web.brave import BraveBackend
from openresponses.tools.web.registry import BACKENDS
from openresponses.tools.web.searxng import SearxngBackend
from openresponses.tools.web.tavily import TavilyBackend
from tests.conftest import free_port
from tests.search_api import Answer, FakeSearchAPI, fixture

MUNICH = m.WebSearchApproximateLocation1(
    country="DE", region="Bavaria", city="München", timezone="Europe/Berlin"
)
ASYNCIO_TASK = WebResult(
    url="https://docs.python.org/3/library/asyncio-task.html",
    title="Coroutines and Tasks — Python 3.13 documentation",
    content="asyncio.timeout(delay) returns an asynchronous context manager that can be used to "
    "limit the amount of time spent waiting on something.",
    published=date(2024, 10, 7),
)
STACK_OVERFLOW = WebResult(
    url="https://stackoverflow.com/questions/28609534/python-asyncio-timeout",
    title="python asyncio timeout - Stack Overflow",
    content="Use asyncio.wait_for to put a timeout on a coroutine.",
)


@pytest.fixture(scope="module")
def api() -> Iterator[FakeSearchAPI]:
    fake = FakeSearchAPI()
    fake.start()
    yield fake
    fake.stop()


def env_for(backend: str, url: str) -> dict[str, str]:
    """The environment that points `backend` at `url`."""
    return {
        "searxng": {"OPENRESPONSES_WEB_SEARCH": "searxng", "SEARXNG_URL": url},
        "brave": {
            "OPENRESPONSES_WEB_SEARCH": "brave",
            "BRAVE_BASE_URL": f"{url}/res/v1",
            "BRAVE_API_KEY": "brave-key",
        },
        "tavily": {
            "OPENRESPONSES_WEB_SEARCH": "tavily",
            "TAVILY_BASE_URL": url,
            "TAVILY_API_KEY": "tvly-key",
        },
    }[backend]


def search(
    backend: str,
    url: str,
    query: str = "asyncio timeout",
    *,
    max_results: int = 5,
    allowed_domains: list[str] | None = None,
    user_location: UserLocation | None = None,
    context_size: ContextSize = "medium",
) -> list[WebResult]:
    """One search through the backend the environment configures (via the registry)."""
    settings = load_settings(env=env_for(backend, url))

    async def go() -> list[WebResult]:
        async with aiohttp.ClientSession() as client:
            chosen = backend_from_settings(settings, client)
            assert chosen is not None and chosen.name == backend
            return await chosen.search(
                query,
                max_results=max_results,
                allowed_domains=allowed_domains,
                user_location=user_location,
                context_size=context_size,
            )

    return asyncio.run(go())


def failure(backend: str, api: FakeSearchAPI, *answers: Answer) -> WebSearchError:
    api.script(*answers)
    with pytest.raises(WebSearchError) as caught:
        search(backend, api.url)
    error = caught.value
    assert error.kind is ErrorKind.MODEL
    return error


# --- configuration ---------------------------------------------------------------------------


def test_web_search_is_off_unless_a_backend_is_configured() -> None:
    settings = load_settings(env={})

    async def go() -> object:
        async with aiohttp.ClientSession() as client:
            return backend_from_settings(settings, client)

    assert settings.web_search is None
    assert asyncio.run(go()) is None


@pytest.mark.parametrize(
    ("env", "config"),
    [
        (
            {"OPENRESPONSES_WEB_SEARCH": "searxng", "SEARXNG_URL": "http://searx.lan:8888/"},
            WebSearchConfig("searxng", "http://searx.lan:8888"),
        ),
        (
            {"OPENRESPONSES_WEB_SEARCH": "Brave", "BRAVE_API_KEY": "k"},
            WebSearchConfig("brave", "https://api.search.brave.com/res/v1", "k"),
        ),
        (
            {"OPENRESPONSES_WEB_SEARCH": "tavily", "TAVILY_API_KEY": "tvly-1"},
            WebSearchConfig("tavily", "https://api.tavily.com", "tvly-1"),
        ),
    ],
)
def test_each_backend_is_configured_from_its_environment(
    env: dict[str, str], config: WebSearchConfig
) -> None:
    assert load_settings(env=env).web_search == config


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("searxng", "OPENRESPONSES_WEB_SEARCH=searxng needs SEARXNG_URL"),
        ("brave", "OPENRESPONSES_WEB_SEARCH=brave needs BRAVE_API_KEY"),
        ("tavily", "OPENRESPONSES_WEB_SEARCH=tavily needs TAVILY_API_KEY"),
        ("google", "OPENRESPONSES_WEB_SEARCH=google is not one of searxng|brave|tavily"),
    ],
)
def test_an_incomplete_or_unknown_backend_stops_the_server_at_start(
    backend: str, message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        load_settings(env={"OPENRESPONSES_WEB_SEARCH": backend})

    assert str(refused.value) == message


def test_every_configurable_backend_has_an_implementation() -> None:
    assert list(BACKENDS) == list(WEB_SEARCH_BACKENDS)


def test_the_no_backend_error_says_how_to_configure_one() -> None:
    error = not_configured("tools[1]")

    assert (error.kind, error.status, error.param, error.code) == (
        ErrorKind.INVALID_REQUEST,
        400,
        "tools[1]",
        "web_search_not_configured",
    )
    assert error.message == (
        "The web_search tool needs a search backend, and this server has none configured. Set "
        "OPENRESPONSES_WEB_SEARCH to one of: searxng (with SEARXNG_URL), brave (with "
        "BRAVE_API_KEY), tavily (with TAVILY_API_KEY), and restart the server."
    )


# --- SearXNG ---------------------------------------------------------------------------------


def test_searxng_sends_the_query_as_json_search_and_reads_its_results(
    api: FakeSearchAPI,
) -> None:
    api.script(Answer(body=fixture("searxng_search.json")))

    results = search("searxng", api.url, max_results=3)

    assert results == [
        ASYNCIO_TASK,
        STACK_OVERFLOW,
        WebResult(
            url="https://peps.python.org/pep-0654/",
            title="PEP 654 - Exception Groups and except* | peps.python.org",
            content="This document proposes language extensions that allow programs to raise "
            "and handle multiple unrelated exceptions simultaneously.",
            published=date(2021, 2, 22),
        ),
    ]
    [sent] = api.requests
    assert (sent.method, sent.path, sent.json) == ("GET", "/search", None)
    assert sent.query == {"q": "asyncio timeout", "format": "json"}


def test_searxng_restricts_domains_with_site_operators_and_drops_other_domains(
    api: FakeSearchAPI,
) -> None:
    """Engines behind SearXNG may ignore `site:`; what comes back is filtered anyway."""
    api.script(Answer(body=fixture("searxng_search.json")))

    results = search(
        "searxng",
        api.url,
        allowed_domains=["python.org", "https://PEPS.python.org/"],
        user_location=MUNICH,
    )

    assert [r.url for r in results] == [
        "https://docs.python.org/3/library/asyncio-task.html",
        "https://peps.python.org/pep-0654/",
        "https://docs.python.org/3/library/asyncio-eventloop.html",
    ]
    [sent] = api.requests
    assert sent.query == {
        "q": "asyncio timeout (site:python.org OR site:peps.python.org)",
        "format": "json",
    }  # and no location: SearXNG has no parameter for one


def test_searxng_snippets_are_clipped_to_the_context_size(api: FakeSearchAPI) -> None:
    long = {"url": "https://example.com/", "title": "Long", "content": "word " * 400}
    api.script(Answer(body=json.dumps({"query": "q", "results": [long]}).encode()))

    [result] = search("searxng", api.url, context_size="low")

    assert len(result.content) <= 500
    assert result.content == "word " * 98 + "word …"


def test_a_url_found_twice_is_one_result(api: FakeSearchAPI) -> None:
    first = {"url": "https://example.com/a", "title": "A", "content": "first"}
    again = {"url": "https://example.com/a", "title": "A again", "content": "second"}
    api.script(Answer(body=json.dumps({"results": [first, again]}).encode()))

    assert search("searxng", api.url) == [WebResult("https://example.com/a", "A", "first")]


def test_searxng_without_the_json_format_enabled_says_how_to_enable_it(
    api: FakeSearchAPI,
) -> None:
    error = failure(
        "searxng", api, Answer(403, b"<h1>403 Forbidden</h1>", content_type="text/html")
    )

    assert (error.status, error.code) == (502, "web_search_auth")
    assert error.message == (
        "web search backend searxng answered HTTP 403: <h1>403 Forbidden</h1> (enable the json "
        "format under search.formats in SearXNG's settings.yml)"
    )


# --- Brave -----------------------------------------------------------------------------------


def test_brave_sends_its_key_count_country_and_location_headers(api: FakeSearchAPI) -> None:
    api.script(Answer(body=fixture("brave_web_search.json")))

    results = search(
        "brave", api.url, max_results=4, allowed_domains=["docs.python.org"], user_location=MUNICH
    )

    assert results == [ASYNCIO_TASK]  # stackoverflow.com is outside the allowed domain
    [sent] = api.requests
    assert (sent.method, sent.path, sent.json) == ("GET", "/res/v1/web/search", None)
    assert sent.query == {
        "q": "asyncio timeout site:docs.python.org",
        "count": "4",
        "result_filter": "web",
        "text_decorations": "false",
        "country": "DE",
    }
    assert sent.headers["x-subscription-token"] == "brave-key"
    assert sent.headers["accept"] == "application/json"
    location = {k: v for k, v in sent.headers.items() if k.startswith("x-loc-")}
    assert location == {
        "x-loc-country": "DE",
        "x-loc-state-name": "Bavaria",
        "x-loc-city": "Munchen",  # header values are ASCII
        "x-loc-timezone": "Europe/Berlin",
    }


def test_brave_gets_as_many_site_operators_as_its_query_limits_allow(
    api: FakeSearchAPI,
) -> None:
    """Brave refuses queries over 400 characters or 50 words; a tool may allow 100 domains."""
    api.script(Answer(body=fixture("brave_web_search.json")))
    allowed = [f"site{i}.example.com" for i in range(100)]

    search("brave", api.url, "python asyncio timeout", allowed_domains=allowed)

    [sent] = api.requests
    sites = " OR ".join(f"site:site{i}.example.com" for i in range(14))
    assert sent.query["q"] == f"python asyncio timeout ({sites})"
    assert len(sent.query["q"]) <= 400
    assert len(sent.query["q"].split()) <= 50


def test_brave_with_a_high_context_size_asks_for_extra_snippets_and_keeps_them(
    api: FakeSearchAPI,
) -> None:
    api.script(Answer(body=fixture("brave_web_search.json")))

    results = search("brave", api.url, context_size="high")

    assert results == [
        WebResult(
            url=ASYNCIO_TASK.url,
            title=ASYNCIO_TASK.title,
            content=f"{ASYNCIO_TASK.content} … If a coroutine is awaited on, it is scheduled as "
            "a task automatically. … Tasks are used to schedule coroutines concurrently.",
            published=date(2024, 10, 7),
        ),
        STACK_OVERFLOW,
    ]
    [sent] = api.requests
    assert sent.query["extra_snippets"] == "true"
    assert sent.query["count"] == "5"


def test_brave_gets_a_country_outside_its_parameter_list_as_a_header_only(
    api: FakeSearchAPI,
) -> None:
    api.script(Answer(body=fixture("brave_web_search.json")))
    luxembourg = m.ApproximateLocation(type="approximate", country="LU")  # web_search_preview's

    search("brave", api.url, user_location=luxembourg)

    [sent] = api.requests
    assert "country" not in sent.query
    assert sent.headers["x-loc-country"] == "LU"
    assert "x-loc-city" not in sent.headers


def test_brave_without_web_results_finds_nothing(api: FakeSearchAPI) -> None:
    api.script(Answer(body=b'{"type": "search", "query": {"original": "zzxq"}}'))

    assert search("brave", api.url, "zzxq") == []


def test_brave_refusing_its_key_is_reported_in_its_own_words(api: FakeSearchAPI) -> None:
    error = failure("brave", api, Answer(422, fixture("brave_error_invalid_token.json")))

    assert (error.status, error.code) == (502, "web_search_failed")
    assert error.message == (
        "web search backend brave answered HTTP 422: The provided subscription token is invalid."
    )


def test_brave_rate_limiting_us_is_a_rate_limit_error(api: FakeSearchAPI) -> None:
    error = failure("brave", api, Answer(429, fixture("brave_error_rate_limited.json")))

    assert (error.status, error.code) == (502, "web_search_rate_limited")
    assert error.message == (
        "web search backend brave answered HTTP 429: Request rate limit exceeded for plan."
    )


# --- Tavily ----------------------------------------------------------------------------------


def test_tavily_posts_the_query_with_its_key_domains_and_country(api: FakeSearchAPI) -> None:
    api.script(Answer(body=fixture("tavily_search.json")))

    results = search(
        "tavily",
        api.url,
        max_results=3,
        allowed_domains=["docs.python.org", "news.example.org"],
        user_location=MUNICH,
    )

    assert results == [
        replace(ASYNCIO_TASK, published=None),  # Tavily dates news results only
        WebResult(
            url="https://news.example.org/python-311-asyncio-timeout",
            title="Python 3.11 adds asyncio.timeout",
            content="The new context manager replaces many uses of wait_for.",
            published=date(2022, 10, 24),
        ),
    ]
    [sent] = api.requests
    assert (sent.method, sent.path, sent.query) == ("POST", "/search", {})
    assert sent.headers["authorization"] == "Bearer tvly-key"
    assert sent.json == {
        "query": "asyncio timeout",
        "max_results": 3,
        "search_depth": "basic",
        "topic": "general",
        "include_answer": False,
        "include_raw_content": False,
        "include_domains": ["docs.python.org", "news.example.org"],
        "country": "germany",
    }


@pytest.mark.parametrize(
    ("context_size", "depth"),
    [
        ("low", {"search_depth": "basic"}),
        ("high", {"search_depth": "advanced", "chunks_per_source": 3}),
    ],
)
def test_tavily_searches_deeper_for_a_high_context_size(
    api: FakeSearchAPI, context_size: ContextSize, depth: dict[str, Any]
) -> None:
    api.script(Answer(body=fixture("tavily_search.json")))

    search("tavily", api.url, max_results=30, context_size=context_size)

    [sent] = api.requests
    assert sent.json == {
        "query": "asyncio timeout",
        "max_results": 20,  # Tavily's limit
        "topic": "general",
        "include_answer": False,
        "include_raw_content": False,
        **depth,
    }


def test_tavily_refusing_its_key_says_which_variable_to_check(api: FakeSearchAPI) -> None:
    error = failure("tavily", api, Answer(401, fixture("tavily_error_unauthorized.json")))

    assert (error.status, error.code) == (502, "web_search_auth")
    assert error.message == (
        "web search backend tavily answered HTTP 401: Unauthorized: missing or invalid API key. "
        "(check TAVILY_API_KEY)"
    )


# --- failures every backend turns into clear errors -----------------------------------------

BACKEND_NAMES = ["searxng", "brave", "tavily"]


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_a_failing_backend_is_a_clear_error(api: FakeSearchAPI, backend: str) -> None:
    error = failure(backend, api, Answer(500, b"Internal Server Error", content_type="text/plain"))

    assert (error.status, error.code) == (502, "web_search_failed")
    assert error.message == (
        f"web search backend {backend} answered HTTP 500: Internal Server Error"
    )


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_a_backend_answering_something_other_than_json_is_a_clear_error(
    api: FakeSearchAPI, backend: str
) -> None:
    error = failure(backend, api, Answer(body=b"<html>maintenance</html>"))

    assert (error.status, error.code) == (502, "web_search_failed")
    assert error.message == f"web search backend {backend} answered with a body that is not JSON"


@pytest.mark.parametrize(
    ("backend", "what"),
    [
        ("searxng", "JSON without a results list"),
        ("brave", "JSON that is not a search response"),
        ("tavily", "JSON without a results list"),
    ],
)
def test_a_backend_answering_json_of_another_shape_is_a_clear_error(
    api: FakeSearchAPI, backend: str, what: str
) -> None:
    error = failure(backend, api, Answer(body=b'{"results": {"oops": 1}}'))

    assert (error.status, error.code) == (502, "web_search_failed")
    assert error.message == f"web search backend {backend} answered with {what}"


@pytest.mark.parametrize("cls", [SearxngBackend, BraveBackend, TavilyBackend])
def test_a_slow_backend_times_out(api: FakeSearchAPI, cls: type[Any]) -> None:
    api.script(Answer(body=b"{}", delay=2.0))

    async def go() -> None:
        async with aiohttp.ClientSession() as client:
            backend = cls(WebSearchConfig(cls.name, api.url, "k"), client, timeout=0.2)
            await backend.search(
                "q",
                max_results=5,
                allowed_domains=None,
                user_location=None,
                context_size="medium",
            )

    with pytest.raises(WebSearchError) as caught:
        asyncio.run(go())

    error = caught.value
    assert (error.status, error.code) == (504, "web_search_timeout")
    assert error.message == f"web search backend {cls.name} did not answer in time"


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_an_unreachable_backend_is_a_clear_error(backend: str) -> None:
    port = free_port()  # nobody listens there
    with pytest.raises(WebSearchError) as caught:
        search(backend, f"http://127.0.0.1:{port}")

    error = caught.value
    assert (error.status, error.code) == (502, "web_search_unreachable")
    assert error.message.startswith(
        f"could not reach web search backend {backend}: Cannot connect to host 127.0.0.1:{port}"
    )
