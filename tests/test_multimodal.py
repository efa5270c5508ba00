"""File references in input (core/attachments.py), through a chat-completions upstream: uploads
by `file_id` and `input_file.file_url`s arrive inline, stored input keeps the reference, and
every way a reference can fail is a clear error before the model is called. (Anthropic's and
the native Responses mapping are in their provider tests.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.attachments import PDF, PNG, data_url, upload
from tests.conftest import Server, server_env
from tests.search_api import Answer, FakeSearchAPI
from tests.upstream import ScriptedUpstream, Text


def user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


ASK = {"type": "input_text", "text": "What is this?"}


@pytest.fixture(scope="module")
def tight(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that inlines at most 1,000 bytes of files per model call (loopback allowed)."""
    env = server_env(
        upstream,
        OPENRESPONSES_MAX_ATTACHMENT_BYTES="1000",
        OPENRESPONSES_ALLOW_PRIVATE_NETWORKS="true",
    )
    server = Server(tmp_path_factory.mktemp("tight"), env).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def guarded(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server with the URL guard on, as in production."""
    server = Server(tmp_path_factory.mktemp("guarded"), server_env(upstream)).start()
    yield server
    server.stop()


def test_an_image_by_file_id_reaches_chat_completions_as_a_data_url(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A tiny image."))
    file_id = upload(client, "pixel.png", PNG)

    client.responses.create(
        model=model,
        input=user(ASK, {"type": "input_image", "file_id": file_id, "detail": "low"}),
    )

    [sent] = upstream.requests(model)
    assert sent.json == {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": data_url("image/png", PNG), "detail": "low"},
                    },
                ],
            }
        ],
    }


def test_a_pdf_by_file_id_reaches_chat_completions_as_file_data_with_its_filename(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A contract."))
    file_id = upload(client, "contract.pdf", PDF)

    client.responses.create(model=model, input=user({"type": "input_file", "file_id": file_id}))

    [sent] = upstream.requests(model)
    assert sent.json["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "file",
                    "file": {
                        "file_data": data_url("application/pdf", PDF),
                        "filename": "contract.pdf",
                    },
                }
            ],
        }
    ]


def test_a_text_file_by_file_id_is_sent_with_its_text_media_type(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Minutes."))
    notes = b"Minutes of the meeting.\n"
    file_id = upload(client, "minutes.txt", notes)

    client.responses.create(
        model=model,
        input=user({"type": "input_file", "file_id": file_id, "filename": "renamed.txt"}),
    )

    [part] = upstream.requests(model)[0].json["messages"][0]["content"]
    assert part == {
        "type": "file",
        "file": {"file_data": data_url("text/plain", notes), "filename": "renamed.txt"},
    }


def test_stored_input_items_keep_the_file_id_the_client_sent(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))
    file_id = upload(client, "pixel.png", PNG)

    response = client.responses.create(
        model=model, input=user({"type": "input_image", "file_id": file_id, "detail": "auto"})
    )

    [item] = client.responses.input_items.list(response.id).data
    assert item.model_dump(exclude_none=True)["content"] == [
        {"type": "input_image", "file_id": file_id, "detail": "auto"}
    ]


def test_a_file_of_an_earlier_turn_is_inlined_again_on_the_next(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A contract."), Text("Yes."))
    file_id = upload(client, "contract.pdf", PDF)
    first = client.responses.create(
        model=model, input=user({"type": "input_file", "file_id": file_id})
    )

    client.responses.create(model=model, previous_response_id=first.id, input="Signed?")

    assert upstream.requests(model)[1].json["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "file",
                    "file": {
                        "file_data": data_url("application/pdf", PDF),
                        "filename": "contract.pdf",
                    },
                }
            ],
        },
        {"role": "assistant", "content": "A contract."},
        {"role": "user", "content": "Signed?"},
    ]


def test_a_file_in_a_conversation_is_inlined_when_the_conversation_goes_on(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Not red."))
    file_id = upload(client, "pixel.png", PNG)
    image = {"type": "input_image", "file_id": file_id, "detail": "auto"}
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": [image]}]  # type: ignore[list-item]
    )

    client.responses.create(model=model, conversation=conversation.id, input="Is it red?")

    assert upstream.requests(model)[0].json["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": data_url("image/png", PNG), "detail": "auto"},
                }
            ],
        },
        {"role": "user", "content": "Is it red?"},
    ]


def test_a_compaction_reads_the_files_of_what_it_summarises(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("The user sent a contract."))
    file_id = upload(client, "contract.pdf", PDF)

    client.responses.compact(model=model, input=user({"type": "input_file", "file_id": file_id}))

    assert upstream.requests(model)[0].json["messages"][1] == {
        "role": "user",
        "content": [
            {
                "type": "file",
                "file": {"file_data": data_url("application/pdf", PDF), "filename": "contract.pdf"},
            }
        ],
    }


def test_an_unknown_file_id_is_a_404_pointing_at_the_input(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(
            model=model, input=user(ASK, {"type": "input_image", "file_id": "file-nope"})
        )

    assert caught.value.body == {
        "message": "No such File object: file-nope",
        "type": "invalid_request_error",
        "param": "input[0].content[1].file_id",
        "code": "file_not_found",
    }
    assert upstream.requests(model) == []


def test_a_file_deleted_after_its_turn_is_a_404_naming_the_chain(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A contract."))
    file_id = upload(client, "contract.pdf", PDF)
    first = client.responses.create(
        model=model, input=user({"type": "input_file", "file_id": file_id})
    )
    client.files.delete(file_id)

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=model, previous_response_id=first.id, input="Signed?")

    assert caught.value.body == {
        "message": f"No such File object: {file_id} (in an earlier input, replayed through "
        "'previous_response_id')",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "file_not_found",
    }
    assert len(upstream.requests(model)) == 1


def test_a_file_that_is_not_an_image_given_as_input_image_is_a_400(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()
    file_id = upload(client, "contract.pdf", PDF)

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model, input=user({"type": "input_image", "file_id": file_id})
        )

    assert caught.value.body == {
        "message": f"File '{file_id}' (contract.pdf) is not a PNG, JPEG, GIF or WEBP image, so "
        "it cannot be an input_image; send it as an input_file instead.",
        "type": "invalid_request_error",
        "param": "input[0].content[0].file_id",
        "code": "invalid_image_file",
    }
    assert upstream.requests(model) == []


def test_an_input_file_with_no_content_is_a_400(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input=user({"type": "input_file", "filename": "a"}))

    assert caught.value.body == {
        "message": "An input_file needs one of file_data, file_id, file_url.",
        "type": "invalid_request_error",
        "param": "input[0].content[0]",
        "code": "missing_required_parameter",
    }


def test_a_file_url_is_fetched_and_sent_inline_to_chat_completions(
    client: openai.OpenAI, upstream: ScriptedUpstream, site: FakeSearchAPI
) -> None:
    model = upstream.script(Text("A report."))
    site.script(Answer(body=PDF, content_type="application/pdf"))

    client.responses.create(
        model=model,
        input=user({"type": "input_file", "file_url": f"{site.url}/docs/q3%20report.pdf"}),
    )

    assert [(r.method, r.path) for r in site.requests] == [("GET", "/docs/q3 report.pdf")]
    [part] = upstream.requests(model)[0].json["messages"][0]["content"]
    assert part == {
        "type": "file",
        "file": {"file_data": data_url("application/pdf", PDF), "filename": "q3 report.pdf"},
    }


def test_a_file_url_that_does_not_load_is_a_400_saying_why(
    client: openai.OpenAI, upstream: ScriptedUpstream, site: FakeSearchAPI
) -> None:
    model = upstream.script()
    site.script(Answer(404, b"gone", content_type="text/plain"))
    url = f"{site.url}/missing.pdf"

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model, input=user(ASK, {"type": "input_file", "file_url": url})
        )

    assert caught.value.body == {
        "message": f"The input_file's file_url could not be fetched: {url} answered HTTP 404.",
        "type": "invalid_request_error",
        "param": "input[0].content[1].file_url",
        "code": "invalid_file_url",
    }
    assert upstream.requests(model) == []


def test_a_file_url_on_a_private_network_is_refused_unfetched(
    guarded: Server, upstream: ScriptedUpstream, site: FakeSearchAPI
) -> None:
    model = upstream.script()
    site.script(Answer(body=PDF, content_type="application/pdf"))
    url = f"{site.url}/internal.pdf"

    with pytest.raises(openai.BadRequestError) as caught:
        guarded.client().responses.create(
            model=model, input=user({"type": "input_file", "file_url": url})
        )

    body = caught.value.body
    assert (body["param"], body["code"]) == ("input[0].content[0].file_url", "url_not_allowed")
    assert body["message"].startswith(f"'{url}' points to 127.0.0.1, a loopback address.")
    assert site.requests == []
    assert upstream.requests(model) == []


def test_an_upload_over_the_attachment_limit_is_a_413(
    tight: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()
    client = tight.client()
    file_id = upload(client, "big.txt", b"x" * 1001)

    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model=model, input=user({"type": "input_file", "file_id": file_id}))

    assert caught.value.status_code == 413
    assert caught.value.body == {
        "message": f"File '{file_id}' (big.txt) (1001 bytes) does not fit in the 1000 bytes "
        "left of this server's limit of 1000 bytes of files sent to the model in one call "
        "(OPENRESPONSES_MAX_ATTACHMENT_BYTES).",
        "type": "invalid_request_error",
        "param": "input[0].content[0].file_id",
        "code": "input_too_large",
    }
    assert upstream.requests(model) == []


def test_files_count_together_against_the_attachment_limit(
    tight: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()
    client = tight.client()
    file_id = upload(client, "half.txt", b"x" * 600)
    part = {"type": "input_file", "file_id": file_id}

    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model=model, input=user(part, part))

    assert caught.value.status_code == 413
    assert caught.value.body["param"] == "input[0].content[1].file_id"
    assert "does not fit in the 400 bytes left" in caught.value.body["message"]


def test_a_file_url_over_the_attachment_limit_is_a_413(
    tight: Server, upstream: ScriptedUpstream, site: FakeSearchAPI
) -> None:
    model = upstream.script()
    site.script(Answer(body=b"y" * 5000, content_type="text/plain"))
    url = f"{site.url}/big.txt"

    with pytest.raises(openai.APIStatusError) as caught:
        tight.client().responses.create(
            model=model, input=user({"type": "input_file", "file_url": url})
        )

    assert caught.value.status_code == 413
    assert caught.value.body == {
        "message": f"The file at {url} does not fit in the 1000 bytes left of this server's "
        "limit of 1000 bytes of files sent to the model in one call "
        "(OPENRESPONSES_MAX_ATTACHMENT_BYTES).",
        "type": "invalid_request_error",
        "param": "input[0].content[0].file_url",
        "code": "input_too_large",
    }


def test_an_image_in_a_function_output_is_a_400_for_chat_completions(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script()
    call = {"type": "function_call", "call_id": "call_1", "name": "snap", "arguments": "{}"}
    output = {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": [{"type": "input_image", "image_url": data_url("image/png", PNG)}],
    }

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input=[call, output])  # type: ignore[list-item]

    assert caught.value.body == {
        "message": "input_image in a function_call_output is not supported by provider "
        "'openai' (chat completions).",
        "type": "invalid_request_error",
        "param": "input",
        "code": "unsupported_value",
    }
    assert upstream.requests(model) == []
