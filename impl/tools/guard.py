"""The outbound URL guard: one rule for every URL fetched on a caller's behalf.

A URL comes from the client (an MCP `server_url`, an `input_image.image_url`, an
`input_file.file_url`, a chat message's `image_url`) or from the model (a page it opens), and
is fetched by this server (tools, the `file_url`s it downloads) or by the model provider (the
images and files it is handed). Either way the fetch starts inside our network: without a guard
any caller could have `http://169.254.169.254/` (cloud metadata), `http://127.0.0.1:5432/` or
an intranet page fetched and read back through the answer, and a provider next to us (a local
vLLM or Ollama) reaches exactly what we reach. `check_url` refuses, with a 400 naming the
field, any URL that is not http(s) or whose host resolves to an address that is not public:
loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT), whether
written as a name, an IPv6 literal, an IPv4-mapped IPv6 address or one of the numeric
spellings the C resolver accepts (`2130706433`, `0177.0.0.1`, `127.1`: the host is resolved
with `getaddrinfo`, exactly as the connection would be, so every spelling means what it means
to the socket). `check_content_url` is the same rule for URLs a provider fetches, where a
`data:` URL (nothing to fetch) passes. `OPENRESPONSES_ALLOW_PRIVATE_NETWORKS=true` lifts it
for local development.

DNS rebinding: a name can resolve to a public address for the check and to a private one for
the connection made a moment later. `check_url` alone cannot prevent that. Connections made
through aiohttp close the gap with `GuardedResolver`: the connection's own resolution drops
non-public addresses, so the address checked is the address connected to (`guarded_session`).
Clients that resolve on their own (the `mcp` SDK's httpx, a provider fetching an image) get
the check only.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from openresponses.errors import APIError, invalid

ALLOW_SETTING = "OPENRESPONSES_ALLOW_PRIVATE_NETWORKS=true"

_SCHEMES = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DNS_TIMEOUT = 10.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), else `ip` itself: the
    packet ends up there, so that is the address to judge."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def non_public(address: str) -> str | None:
    """What kind of non-public address `address` is ("loopback", "private", …), or None when
    it is a public unicast address a tool may reach."""
    ip = _embedded_ipv4(ipaddress.ip_address(address.split("%", 1)[0]))  # drop an IPv6 zone
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),  # e.g. shared address space, 100.64.0.0/10
    )
    return next((kind for kind, hit in checks if hit), None)


def _refused(message: str, param: str) -> APIError:
    return invalid(
        f"{message} URLs fetched on a caller's behalf (tools, input images and files) must "
        f"reach public addresses; set {ALLOW_SETTING} on the server to allow loopback and "
        "private networks (local development).",
        param=param,
        code="url_not_allowed",
    )


async def check_url(url: str, *, allow_private: bool, param: str = "url") -> None:
    """Raises a 400 naming `param` unless `url` is http(s) and its host resolves only to
    public addresses (any scheme-valid URL passes when `allow_private`)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a malformed port or IPv6 literal
        raise invalid(f"'{url}' is not a valid URL: {exc}.", param=param) from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise invalid(f"'{url}' is not an http or https URL.", param=param, code="url_not_allowed")
    if not host:
        raise invalid(f"'{url}' has no host.", param=param)
    if allow_private:
        return
    addresses = await _resolve(host, port or _SCHEMES[scheme], url, param)
    for address in addresses:
        kind = non_public(address)
        if kind is not None:
            shown = host if host == address else f"{host} ({address})"
            raise _refused(f"'{url}' points to {shown}, a {kind} address.", param)


async def check_content_url(url: str, *, allow_private: bool, param: str) -> None:
    """`check_url` for an image or file a model provider is handed by URL and fetches itself:
    a `data:` URL carries its content, so there is nothing to fetch and it passes."""
    if url[:5].lower() != "data:":
        await check_url(url, allow_private=allow_private, param=param)


async def _resolve(host: str, port: int, url: str, param: str) -> list[str]:
    """Every address `host` resolves to, off the event loop (getaddrinfo runs in a thread)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_DNS_TIMEOUT):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError) as exc:
        # Fail closed: a host that cannot be judged is not reached.
        raise invalid(
            f"'{url}': the host {host} could not be resolved.",
            param=param,
            code="url_unresolvable",
        ) from exc
    return [str(info[4][0]) for info in infos]


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, minus non-public addresses: a name that resolves only to
    such addresses cannot be connected to, whatever it resolved to when `check_url` looked.
    (aiohttp does not resolve IP literals; `check_url` judges those, and they cannot change.)"""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        public = [r for r in results if non_public(r["host"]) is None]
        if not public:
            # An errno and a strerror, so that aiohttp's ClientConnectorError shows the reason.
            reason = f"{host} resolves only to non-public addresses ({ALLOW_SETTING} allows them)"
            raise OSError(errno.EHOSTUNREACH, reason)
        return public

    async def close(self) -> None:
        await self._resolver.close()


def guarded_session(*, allow_private: bool, **options: Any) -> aiohttp.ClientSession:
    """A client for tool URLs whose connections can only reach public addresses (unless
    `allow_private`); `options` go to `aiohttp.ClientSession`."""
    connector = aiohttp.TCPConnector(resolver=None if allow_private else GuardedResolver())
    return aiohttp.ClientSession(connector=connector, **options)
