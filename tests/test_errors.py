"""Bad input gets a clear error in OpenAI's shape, with the right status, never a stack trace."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server, server_env
from tests.upstream import Error, ScriptedUpstream, Text


def _post(
    server: Server, body: bytes | dict[str, Any], path: str = "/responses", **headers: str
) -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    payload = body if isinstance(body, dict) else None
    return httpx.post(
        f"{server.base_url}{path}",
        content=content,
        json=payload,
        headers={"content-type": "application/json", **headers},
        timeout=10,
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


def test_missing_model_is_a_400_naming_model(server: Server) -> None:
    response = _post(server, {"input": "hi"})

    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == "model"
    assert error["type"] == "invalid_request_error"
    assert "model" in error["message"]


def test_malformed_json_is_a_400(server: Server) -> None:
    response = _post(server, b'{"model": "x", "input": ')

    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"


def test_body_that_is_not_utf8_is_a_400(server: Server) -> None:
    response = _post(server, b'{"model": "\xff\xfe"}')

    assert response.status_code == 400
    assert _error(response)["type"] == "invalid_request_error"


def test_body_that_is_not_an_object_is_a_400(server: Server) -> None:
    response = _post(server, b"[1, 2]")

    assert response.status_code == 400
    assert _error(response)["message"] == "The request body must be a JSON object."


def _invalid(param: str, code: str, message: str) -> dict[str, str]:
    return {"message": message, "type": "invalid_request_error", "param": param, "code": code}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"model": "m", "input": "hi", "temperature": "hot"},
            _invalid(
                "temperature",
                "invalid_type",
                "Invalid type for 'temperature': expected a number, but got a string instead.",
            ),
        ),
        # `model` is a string or one of OpenAI's enums of names: the type is what is wrong.
        (
            {"model": 3},
            _invalid(
                "model",
                "invalid_type",
                "Invalid type for 'model': expected a string, but got an integer instead.",
            ),
        ),
        (
            {"model": "m", "input": 5},
            _invalid(
                "input",
                "invalid_type",
                "Invalid type for 'input': expected a string or an array, "
                "but got an integer instead.",
            ),
        ),
        (
            {"model": "m", "tool_choice": 5},
            _invalid(
                "tool_choice",
                "invalid_type",
                "Invalid type for 'tool_choice': expected an object or a string, "
                "but got an integer instead.",
            ),
        ),
    ],
    ids=["number", "string-or-enum", "string-or-array", "object-or-enum"],
)
def test_a_value_of_a_type_the_parameter_does_not_take_names_both_types(
    server: Server, body: dict[str, Any], error: dict[str, str]
) -> None:
    response = _post(server, body)

    assert response.status_code == 400
    assert _error(response) == error


def test_a_string_outside_an_enum_lists_the_enums_values(server: Server) -> None:
    response = _post(server, {"model": "m", "tool_choice": "sometimes"})

    assert response.status_code == 400
    assert _error(response) == _invalid(
        "tool_choice",
        "invalid_value",
        "Invalid value for 'tool_choice': Input should be 'none', 'auto' or 'required'.",
    )


@pytest.mark.parametrize("path", ["/responses", "/responses/input_tokens"])
def test_a_bad_field_of_a_tool_is_named_by_the_tool_type_sent(server: Server, path: str) -> None:
    """Not by another tool type's field that happens to lie deeper (a shell tool's
    `environment` object, for a computer tool whose `environment` is a string)."""
    tool = {
        "type": "computer_use_preview",
        "environment": "windows",
        "display_width": 1024,
        "display_height": 2**70,
    }

    response = _post(server, {"model": "m", "input": "hi", "tools": [tool]}, path)

    assert response.status_code == 400
    assert _error(response) == _invalid(
        "tools[0].display_height",
        "invalid_value",
        "Invalid value for 'tools[0].display_height': Unable to parse input string as an "
        "integer, exceeded maximum size.",
    )


def test_wrong_type_inside_an_input_item_names_its_path(server: Server) -> None:
    response = _post(server, {"model": "m", "input": [{"role": "user", "content": 5}]})

    assert response.status_code == 400
    assert _error(response)["param"].startswith("input[0]")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/responses", {"model": "m", "input": ["hi"]}, "input[0]"),
        ("/conversations", {"items": ["hi"]}, "items[0]"),
    ],
)
def test_an_item_list_holding_a_bare_string_is_a_400_naming_it(
    server: Server, path: str, body: dict[str, Any], param: str
) -> None:
    response = _post(server, body, path)

    assert response.status_code == 400
    assert _error(response)["param"] == param


def test_unknown_parameter_is_a_400(server: Server) -> None:
    response = _post(server, {"model": "m", "input": "hi", "temprature": 1})

    assert response.status_code == 400
    error = _error(response)
    assert (error["param"], error["code"]) == ("temprature", "unknown_parameter")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"include": ["message.output_text.logprobs"]}, "include[0]"),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type"),
        ({"reasoning": {"summary": "detailed"}}, "reasoning.summary"),
        ({"reasoning": {"effort": "low", "context": "all_turns"}}, "reasoning.context"),
    ],
)
def test_unsupported_parameters_are_a_clear_400(
    server: Server, extra: dict[str, Any], param: str
) -> None:
    response = _post(server, {"model": "m", "input": "hi", **extra})

    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == param
    assert "not supported" in error["message"]


@pytest.mark.parametrize(
    ("metadata", "message", "param", "code"),
    [
        (
            {f"k{n}": "v" for n in range(17)},
            "Invalid 'metadata': too many properties. Expected an object with at most 16 "
            "properties, but got an object with 17 properties instead.",
            "metadata",
            "object_above_max_properties",
        ),
        (
            {"k" * 65: "v"},
            f"Invalid 'metadata.{'k' * 65}': key too long. Expected a key with maximum length "
            "64, but got a key with length 65 instead.",
            f"metadata.{'k' * 65}",
            "string_above_max_length",
        ),
        (
            {"note": "v" * 513},
            "Invalid 'metadata.note': string too long. Expected a string with maximum length "
            "512, but got a string with length 513 instead.",
            "metadata.note",
            "string_above_max_length",
        ),
    ],
    ids=["17 pairs", "65-character key", "513-character value"],
)
@pytest.mark.parametrize("path", ["/responses", "/conversations", "/vector_stores"])
def test_metadata_over_openais_limits_is_a_400_on_every_object_that_has_it(
    server: Server, metadata: dict[str, str], message: str, param: str, code: str, path: str
) -> None:
    body = {"model": "m", "input": "Hi"} if path == "/responses" else {}
    response = _post(server, {**body, "metadata": metadata}, path)

    assert response.status_code == 400
    assert _error(response) == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


def test_metadata_at_openais_limits_is_kept(client: openai.OpenAI) -> None:
    metadata = {f"{n:02d}" + "k" * 62: "v" * 512 for n in range(16)}

    conversation = client.conversations.create(metadata=metadata)

    assert client.conversations.retrieve(conversation.id).metadata == metadata


def test_unknown_provider_is_a_400_that_names_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="nosuch@gpt-x", input="hi")

    body = caught.value.body
    assert isinstance(body, dict)
    assert "nosuch" in body["message"]
    assert body["code"] == "unknown_provider"


def test_previous_response_id_that_does_not_exist_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="hi", previous_response_id="resp_missing")

    assert caught.value.body == {
        "message": "Previous response with id 'resp_missing' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_unknown_item_reference_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=[{"type": "item_reference", "id": "msg_nope"}])

    assert caught.value.body["param"] == "input[0].id"  # type: ignore[index]


def test_unknown_route_is_a_404_in_openai_shape(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/nothing/here")

    assert response.status_code == 404
    assert _error(response)["type"] == "invalid_request_error"


def test_bad_query_parameter_is_a_400(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/responses/resp_x/input_items?limit=abc")

    assert response.status_code == 400
    _error(response)


def test_upstream_401_reaches_the_client_as_401(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Error(401, "Incorrect API key", type="invalid_request_error"))

    with pytest.raises(openai.AuthenticationError) as caught:
        client.responses.create(model=model, input="hi")

    assert "Incorrect API key" in caught.value.message


def test_upstream_500_is_a_502_upstream_error(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Error(500, "boom"))

    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model=model, input="hi")

    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"  # type: ignore[index]


def test_unreachable_upstream_is_a_502(server: Server, upstream: ScriptedUpstream) -> None:
    response = _post(server, {"model": "m", "input": "hi"}, **{"x-model-provider": "vllm"})

    assert response.status_code == 502
    assert _error(response)["code"] == "upstream_unreachable"


def test_errors_do_not_stop_the_server(
    client: openai.OpenAI, server: Server, upstream: ScriptedUpstream
) -> None:
    _post(server, b"{{{")

    assert (
        client.responses.create(model=upstream.script(Text("fine")), input="x").output_text
        == "fine"
    )


def _complete(reply: bytes) -> bool:
    """Whether an HTTP reply holds its whole body, by its content-length."""
    head, _, body = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100000000\r\n\r\n{"
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not _complete(reply):
            chunk = sock.recv(65536)  # head and body may arrive in separate packets
            if not chunk:
                break
            reply += chunk

    head, _, body = reply.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_server_api_keys_are_required_when_configured(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    model = upstream.script(Text("let in"))
    env = server_env(upstream, OPENRESPONSES_API_KEYS="sk-team-1, sk-team-2")
    server = Server(tmp_path, env).start()
    try:
        missing = httpx.get(f"{server.base_url}/responses/resp_x")
        wrong = httpx.get(
            f"{server.base_url}/responses/resp_x", headers={"authorization": "Bearer sk-nope"}
        )
        allowed = server.client(api_key="sk-team-2").responses.create(model=model, input="hi")
    finally:
        server.stop()

    assert (missing.status_code, _error(missing)["code"]) == (401, "missing_api_key")
    assert (wrong.status_code, _error(wrong)["code"]) == (401, "invalid_api_key")
    assert _error(wrong)["type"] == "authentication_error"
    assert allowed.output_text == "let in"
    # the client's token was for this server: it is not passed on to the provider
    assert "authorization" not in upstream.requests(model)[0].headers
