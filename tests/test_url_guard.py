"""The outbound URL guard (tools/guard.py), called in-process: every class of non-public
address, every spelling of one, the schemes, the setting that lifts it, and the resolver that
pins what a connection may reach. IP literals need no DNS; names use `localhost`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from openresponses.errors import APIError, ErrorKind
from openresponses.tools.guard import check_url, guarded_session
from tests.loopback import LoopbackServer

HINT = (
    " URLs fetched on a caller's behalf (tools, input images and files) must reach public "
    "addresses; set OPENRESPONSES_ALLOW_PRIVATE_NETWORKS=true on the server to allow loopback "
    "and private networks (local development)."
)


def refusal(url: str, *, allow_private: bool = False, param: str = "url") -> APIError:
    with pytest.raises(APIError) as caught:
        asyncio.run(check_url(url, allow_private=allow_private, param=param))
    error = caught.value
    assert (error.kind, error.status) == (ErrorKind.INVALID_REQUEST, 400)
    assert error.param == param
    return error


@pytest.mark.parametrize(
    ("host", "shown", "kind"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("10.1.2.3", "10.1.2.3", "private"),
        ("172.16.0.9", "172.16.0.9", "private"),
        ("192.168.1.1", "192.168.1.1", "private"),
        ("169.254.169.254", "169.254.169.254", "link-local"),  # cloud metadata
        ("224.0.0.1", "224.0.0.1", "multicast"),
        ("240.0.0.1", "240.0.0.1", "reserved"),
        ("255.255.255.255", "255.255.255.255", "reserved"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("100.64.0.1", "100.64.0.1", "non-public"),  # shared address space (CGNAT)
        ("[::1]", "::1", "loopback"),
        ("[::]", "::", "unspecified"),
        ("[fe80::1]", "fe80::1", "link-local"),
        ("[fc00::1]", "fc00::1", "private"),
        ("[ff02::1]", "ff02::1", "multicast"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
        ("[::ffff:a9fe:a9fe]", "::ffff:a9fe:a9fe (::ffff:169.254.169.254)", "link-local"),
        ("[64:ff9b::a00:1]", "64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("[2002:c0a8:101::]", "2002:c0a8:101::", "private"),  # 6to4 of 192.168.1.1
    ],
)
def test_a_non_public_ip_literal_is_refused_naming_its_kind(
    host: str, shown: str, kind: str
) -> None:
    url = f"http://{host}:8080/mcp"
    error = refusal(url, param="tools[0].server_url")

    assert error.code == "url_not_allowed"
    assert error.message == f"'{url}' points to {shown}, a {kind} address.{HINT}"


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "0x7f000001", "017700000001"]
)
def test_decimal_octal_and_short_spellings_of_loopback_are_refused(host: str) -> None:
    url = f"http://{host}/"
    error = refusal(url)

    assert error.message == f"'{url}' points to {host} (127.0.0.1), a loopback address.{HINT}"


def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    error = refusal("http://localhost:9000/sse", param="tools[1].server_url")

    assert error.code == "url_not_allowed"
    assert re.fullmatch(
        r"'http://localhost:9000/sse' points to localhost \((127\.0\.0\.1|::1)\), "
        rf"a loopback address\.{re.escape(HINT)}",
        error.message,
    )


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/", "https://1.1.1.1:8443/dns?q=1", "https://[2606:4700::1111]/"]
)
def test_a_public_address_passes(url: str) -> None:
    assert asyncio.run(check_url(url, allow_private=False)) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/mcp", "http://[::1]/", "http://169.254.169.254/", "http://localhost/"],
)
def test_allowing_private_networks_lifts_the_guard(url: str) -> None:
    assert asyncio.run(check_url(url, allow_private=True)) is None


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://8.8.8.8/", "gopher://8.8.8.8/", "ws://8.8.8.8/", "x"]
)
def test_a_scheme_other_than_http_is_refused_even_with_private_networks_allowed(
    url: str, allow_private: bool
) -> None:
    error = refusal(url, allow_private=allow_private, param="tools[0].server_url")

    assert error.code == "url_not_allowed"
    assert error.message == f"'{url}' is not an http or https URL."


@pytest.mark.parametrize(
    ("url", "why"),
    [("http://[::1/", "Invalid IPv6 URL"), ("http://8.8.8.8:99999/", "Port out of range")],
)
def test_a_malformed_url_is_refused(url: str, why: str) -> None:
    error = refusal(url)

    assert error.code is None
    assert error.message.startswith(f"'{url}' is not a valid URL: {why}")


def test_a_url_without_host_is_refused() -> None:
    error = refusal("https:///path")

    assert error.message == "'https:///path' has no host."


def test_a_host_that_cannot_be_resolved_is_refused() -> None:
    """Fail closed; a label over 63 characters fails in the resolver itself, without DNS."""
    url = f"http://{'a' * 64}.example/"
    error = refusal(url)

    assert error.code == "url_unresolvable"
    assert error.message == f"'{url}': the host {'a' * 64}.example could not be resolved."


@pytest.fixture(scope="module")
def local_site() -> Iterator[LoopbackServer]:
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("inside"))])
    server = LoopbackServer(app, name="local-site")
    server.start()
    yield server
    server.stop()


async def _get(url: str, *, allow_private: bool) -> str:
    async with guarded_session(allow_private=allow_private) as client, client.get(url) as answer:
        return await answer.text()


def test_the_guarded_session_cannot_connect_to_a_name_that_resolves_to_loopback(
    local_site: LoopbackServer,
) -> None:
    """The connection's own resolution is filtered: what passed a check a moment earlier
    (DNS rebinding) still cannot reach a private address."""
    url = f"http://localhost:{local_site.port}/"
    with pytest.raises(aiohttp.ClientConnectorDNSError) as refused:
        asyncio.run(_get(url, allow_private=False))

    assert str(refused.value) == (
        f"Cannot connect to host localhost:{local_site.port} ssl:default [localhost resolves "
        "only to non-public addresses (OPENRESPONSES_ALLOW_PRIVATE_NETWORKS=true allows them)]"
    )


def test_the_guarded_session_reaches_loopback_when_private_networks_are_allowed(
    local_site: LoopbackServer,
) -> None:
    url = f"http://localhost:{local_site.port}/"

    assert asyncio.run(_get(url, allow_private=True)) == "inside"
