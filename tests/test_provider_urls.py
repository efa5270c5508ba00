"""URLs a model provider fetches on a caller's behalf (tools/guard.py's rule, applied in
core/attachments.py and api/chat.py): input images by URL, files by URL for a provider that
fetches them itself, and chat messages' `image_url`s. Non-public addresses are a 400 naming
the field before the provider hears of them; `OPENRESPONSES_ALLOW_PRIVATE_NETWORKS` (on for
the shared `server`) lets them through. Address literals need no DNS, and the scripted
upstream fetches nothing, so no test reaches the internet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.attachments import PNG, data_url
from tests.conftest import Server, server_env
from tests.upstream import ScriptedUpstream, Text

HINT = (
    " URLs fetched on a caller's behalf (tools, input images and files) must reach public "
    "addresses; set OPENRESPONSES_ALLOW_PRIVATE_NETWORKS=true on the server to allow loopback "
    "and private networks (local development)."
)
PUBLIC = "https://93.184.216.34/x.png"
NON_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("10.0.0.7", "private"),
]
ASK = {"type": "input_text", "text": "What is this?"}


def user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


def image(url: str) -> dict[str, Any]:
    return {"type": "input_image", "image_url": url, "detail": "auto"}


def refusal(url: str, host: str, kind: str, param: str) -> dict[str, Any]:
    return {
        "message": f"'{url}' points to {host}, a {kind} address.{HINT}",
        "type": "invalid_request_error",
        "param": param,
        "code": "url_not_allowed",
    }


@pytest.fixture(scope="module")
def guarded(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The guard on, as in production; `native@` routes to a Responses upstream, which
    fetches `file_url`s itself."""
    data = tmp_path_factory.mktemp("guarded-urls")
    config = data / "openresponses.toml"
    config.write_text(
        f'[providers.native]\nkind = "openai-responses"\nbase_url = "{upstream.base_url}"\n'
    )
    server = Server(data, server_env(upstream), ["--config", str(config)]).start()
    yield server
    server.stop()


@pytest.mark.parametrize(("host", "kind"), NON_PUBLIC)
def test_an_image_url_on_a_non_public_address_is_refused_naming_the_field(
    guarded: Server, upstream: ScriptedUpstream, host: str, kind: str
) -> None:
    model = upstream.script()
    url = f"http://{host}/cat.png"

    with pytest.raises(openai.BadRequestError) as caught:
        guarded.client().responses.create(model=model, input=user(ASK, image(url)))

    assert caught.value.body == refusal(url, host, kind, "input[0].content[1].image_url")
    assert upstream.requests(model) == []


def test_an_image_url_on_loopback_reaches_the_upstream_with_private_networks_allowed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A cat."))

    client.responses.create(model=model, input=user(image("http://127.0.0.1/cat.png")))

    [sent] = upstream.requests(model)
    assert sent.json["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1/cat.png", "detail": "auto"}}
    ]


def test_an_image_url_on_a_public_address_reaches_the_upstream(
    guarded: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A cat."))

    guarded.client().responses.create(model=model, input=user(image(PUBLIC)))

    [sent] = upstream.requests(model)
    assert sent.json["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": PUBLIC, "detail": "auto"}}
    ]


def test_a_data_image_url_reaches_the_upstream_unjudged(
    guarded: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A pixel."))
    url = data_url("image/png", PNG)

    guarded.client().responses.create(model=model, input=user(image(url)))

    [sent] = upstream.requests(model)
    assert sent.json["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": url, "detail": "auto"}}
    ]


def test_an_image_url_with_a_file_scheme_is_refused(
    guarded: Server, upstream: ScriptedUpstream
) -> None:
    """A local vLLM can read `file://` images from its own disk."""
    model = upstream.script()

    with pytest.raises(openai.BadRequestError) as caught:
        guarded.client().responses.create(model=model, input=user(image("file:///etc/passwd")))

    assert caught.value.body == {
        "message": "'file:///etc/passwd' is not an http or https URL.",
        "type": "invalid_request_error",
        "param": "input[0].content[0].image_url",
        "code": "url_not_allowed",
    }
    assert upstream.requests(model) == []


def test_a_file_url_for_a_provider_that_fetches_it_is_refused_on_a_metadata_address(
    guarded: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()
    url = "http://169.254.169.254/latest/meta-data/iam"

    with pytest.raises(openai.BadRequestError) as caught:
        guarded.client().responses.create(
            model=f"native@{model}", input=user(ASK, {"type": "input_file", "file_url": url})
        )

    assert caught.value.body == refusal(
        url, "169.254.169.254", "link-local", "input[0].content[1].file_url"
    )
    assert upstream.requests(model) == []


def test_an_image_url_replayed_from_a_conversation_is_refused_naming_it(
    guarded: Server, upstream: ScriptedUpstream
) -> None:
    """Items added to a conversation are judged when a response sends them to a model."""
    model = upstream.script()
    client = guarded.client()
    url = "http://10.0.0.7/cat.png"
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": [image(url)]}]
    )

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, conversation=conversation.id, input="And this?")

    assert caught.value.body == refusal(url, "10.0.0.7", "private", "conversation")
    assert upstream.requests(model) == []


def test_a_compaction_refuses_an_image_url_on_loopback(
    guarded: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()
    url = "http://127.0.0.1:11434/api/tags"

    with pytest.raises(openai.BadRequestError) as caught:
        guarded.client().responses.compact(model=model, input=user(image(url)))

    param = "input[0].content[0].image_url"
    assert caught.value.body == refusal(url, "127.0.0.1", "loopback", param)
    assert upstream.requests(model) == []


def chat_image(url: str) -> list[dict[str, Any]]:
    text = {"type": "text", "text": "What is this?"}
    return [{"role": "user", "content": [text, {"type": "image_url", "image_url": {"url": url}}]}]


@pytest.mark.parametrize(("host", "kind"), NON_PUBLIC)
def test_a_chat_image_url_on_a_non_public_address_is_refused_naming_the_field(
    guarded: Server, upstream: ScriptedUpstream, host: str, kind: str
) -> None:
    model = upstream.script()
    url = f"http://{host}/cat.png"

    with pytest.raises(openai.BadRequestError) as caught:
        guarded.client().chat.completions.create(model=model, messages=chat_image(url))

    assert caught.value.body == refusal(url, host, kind, "messages[0].content[1].image_url.url")
    assert upstream.requests(model) == []


def test_a_chat_image_url_on_loopback_reaches_the_upstream_with_private_networks_allowed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A cat."))
    messages = chat_image("http://127.0.0.1/cat.png")

    client.chat.completions.create(model=model, messages=messages)

    [sent] = upstream.requests(model)
    assert sent.json == {"model": model, "messages": messages}


def test_a_chat_image_url_on_a_public_address_reaches_the_upstream(
    guarded: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A cat."))
    messages = chat_image(PUBLIC)

    guarded.client().chat.completions.create(model=model, messages=messages)

    [sent] = upstream.requests(model)
    assert sent.json == {"model": model, "messages": messages}
