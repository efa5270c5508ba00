"""The web_search tool's `open_page` action (tools/web/page.py), called in-process
against pages served on loopback (so private networks are allowed, except where the guard
itself is under test): readable text, redirects checked hop by hop, and the limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from openresponses.errors import APIError, ErrorKind
from openresponses.tools.web import PageFetcher, PageText, WebSearchError
from tests.conftest import free_port
from tests.search_api import Answer, FakeSearchAPI

PARAM = "output[0].action.url"


@pytest.fixture(scope="module")
def site() -> Iterator[FakeSearchAPI]:
    fake = FakeSearchAPI()
    fake.start()
    yield fake
    fake.stop()


def fetch(url: str, *, allow_private: bool = True, **limits: Any) -> PageText:
    async def go() -> PageText:
        fetcher = PageFetcher(allow_private=allow_private, **limits)
        try:
            return await fetcher.fetch_page(url, param=PARAM)
        finally:
            await fetcher.close()

    return asyncio.run(go())


def page_error(url: str, **limits: Any) -> WebSearchError:
    with pytest.raises(WebSearchError) as caught:
        fetch(url, **limits)
    assert caught.value.kind is ErrorKind.MODEL
    return caught.value


HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>  Asyncio &amp; timeouts </title>
<style>body { color: red }</style><script>var s = "<p>not text</p>";</script></head>
<body><nav><a href="/">Home</a> | <a href="/docs">Docs</a></nav>
<h1>Timeouts</h1><p>Use <code>asyncio.timeout()</code>
   to limit   waiting.</p>
<ul><li>Python 3.11+</li><li>Works with <b>tasks</b></li></ul>
<noscript>Enable JavaScript</noscript><svg><text>chart label</text></svg>
<h2>Notes</h2><p>Caf&eacute; &#8211; done<br>next line</p></body></html>
"""


def test_an_html_page_becomes_its_title_and_readable_text(site: FakeSearchAPI) -> None:
    site.script(Answer(body=HTML.encode(), content_type="text/html; charset=utf-8"))

    page = fetch(f"{site.url}/article")

    assert page == PageText(
        url=f"{site.url}/article",
        title="Asyncio & timeouts",
        text="Home | Docs\n# Timeouts\nUse asyncio.timeout() to limit waiting.\n"
        "- Python 3.11+\n- Works with tasks\n## Notes\nCafé \u2013 done\nnext line",
        truncated=False,
    )
    [sent] = site.requests
    assert (sent.method, sent.path) == ("GET", "/article")
    assert sent.headers["accept"].startswith("text/html")


def test_a_page_without_a_charset_header_is_decoded_by_its_meta_charset(
    site: FakeSearchAPI,
) -> None:
    body = '<meta charset="iso-8859-1"><title>Menü</title><p>Crème brûlée</p>'
    site.script(Answer(body=body.encode("latin-1"), content_type="text/html"))

    page = fetch(f"{site.url}/menu")

    assert (page.title, page.text) == ("Menü", "Crème brûlée")


def test_a_plain_text_page_is_its_text(site: FakeSearchAPI) -> None:
    site.script(Answer(body=b"\n  line one\nline two  \n", content_type="text/plain"))

    page = fetch(f"{site.url}/notes.txt")

    assert page == PageText(f"{site.url}/notes.txt", "", "line one\nline two", truncated=False)


def test_redirects_are_followed_to_the_final_page(site: FakeSearchAPI) -> None:
    site.script(
        Answer(301, b"", headers={"location": "/moved"}),
        Answer(307, b"", headers={"location": f"{site.url}/final?x=1"}),
        Answer(body=b"<p>here</p>", content_type="text/html"),
    )

    page = fetch(f"{site.url}/start")

    assert (page.url, page.text) == (f"{site.url}/final?x=1", "here")
    assert [r.path for r in site.requests] == ["/start", "/moved", "/final"]


def test_a_redirect_is_checked_before_it_is_followed(site: FakeSearchAPI) -> None:
    site.script(Answer(302, b"", headers={"location": "file:///etc/passwd"}))

    with pytest.raises(APIError) as caught:
        fetch(f"{site.url}/start")

    error = caught.value
    assert (error.status, error.param, error.code) == (400, PARAM, "url_not_allowed")
    assert error.message == "'file:///etc/passwd' is not an http or https URL."


def test_too_many_redirects_are_a_clear_error(site: FakeSearchAPI) -> None:
    site.script(*[Answer(302, b"", headers={"location": f"/hop{i}"}) for i in range(3)])

    error = page_error(f"{site.url}/hop", max_redirects=2)

    assert (error.status, error.code) == (502, "page_unavailable")
    assert error.message == f"{site.url}/hop2 redirected more than 2 times"


def test_a_loopback_page_is_refused_before_anything_is_sent(site: FakeSearchAPI) -> None:
    site.script(Answer(body=b"secret", content_type="text/plain"))

    with pytest.raises(APIError) as caught:
        fetch(f"{site.url}/admin", allow_private=False)

    error = caught.value
    assert (error.status, error.param, error.code) == (400, PARAM, "url_not_allowed")
    assert error.message.startswith(f"'{site.url}/admin' points to 127.0.0.1, a loopback address.")
    assert site.requests == []


def test_a_page_over_the_size_limit_is_cut(site: FakeSearchAPI) -> None:
    site.script(Answer(body=b"a" * 5000, content_type="text/plain"))

    page = fetch(f"{site.url}/big", max_bytes=1000)

    assert (page.text, page.truncated) == ("a" * 1000, True)


def test_a_page_that_is_not_text_is_a_clear_error(site: FakeSearchAPI) -> None:
    site.script(Answer(body=b"\x89PNG\r\n", content_type="image/png"))

    error = page_error(f"{site.url}/chart.png")

    assert (error.status, error.code) == (502, "page_unreadable")
    assert error.message == f"{site.url}/chart.png is image/png, which cannot be read as text"


def test_a_missing_page_is_a_clear_error(site: FakeSearchAPI) -> None:
    site.script(Answer(404, b"not here", content_type="text/plain"))

    error = page_error(f"{site.url}/gone")

    assert (error.status, error.code) == (502, "page_unavailable")
    assert error.message == f"{site.url}/gone answered HTTP 404"


def test_a_slow_page_times_out(site: FakeSearchAPI) -> None:
    site.script(Answer(body=b"late", content_type="text/plain", delay=2.0))

    error = page_error(f"{site.url}/slow", timeout=0.2)

    assert (error.status, error.code) == (504, "page_timeout")
    assert error.message == f"{site.url}/slow did not load in time"


def test_an_unreachable_page_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/"

    error = page_error(url)

    assert (error.status, error.code) == (502, "page_unreachable")
    assert error.message.startswith(f"could not open {url}: Cannot connect to host 127.0.0.1:")
