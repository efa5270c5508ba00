"""`/v1/files` through the official SDK: upload, list, retrieve, content, delete, limits."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server


def upload(client: openai.OpenAI, name: str, data: bytes, purpose: str = "assistants") -> Any:
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)  # type: ignore[arg-type]


def test_an_upload_is_retrieved_and_downloaded_as_sent(client: openai.OpenAI) -> None:
    data = "Ünïcode notes\n".encode() * 1000
    created = client.files.create(file=("notes.txt", io.BytesIO(data)), purpose="assistants")

    assert created.id.startswith("file-")
    assert created.model_dump() == {
        "id": created.id,
        "object": "file",
        "bytes": len(data),
        "created_at": created.created_at,
        "expires_at": None,
        "filename": "notes.txt",
        "purpose": "assistants",
        "status": "processed",
        "status_details": None,
    }
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).read() == data


def test_expires_after_sets_expires_at(client: openai.OpenAI) -> None:
    created = client.files.create(
        file=("a.txt", io.BytesIO(b"a")),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )

    assert created.expires_at == created.created_at + 7200
    assert client.files.retrieve(created.id).expires_at == created.expires_at


def test_list_filters_by_purpose_and_pages_in_either_order(client: openai.OpenAI) -> None:
    ids = [
        client.files.create(file=(f"{n}.txt", io.BytesIO(b"x")), purpose="vision").id
        for n in range(3)
    ]
    upload(client, "other.txt", b"y", purpose="batch")

    newest_first = client.files.list(purpose="vision", limit=2)
    assert [f.id for f in newest_first.data] == [ids[2], ids[1]]
    assert newest_first.has_more is True
    rest = client.files.list(purpose="vision", limit=2, after=ids[1])
    assert [f.id for f in rest.data] == [ids[0]]
    assert rest.has_more is False
    oldest_first = client.files.list(purpose="vision", order="asc")
    assert [f.id for f in oldest_first.data] == ids
    assert {f.purpose for f in client.files.list(purpose="batch")} == {"batch"}


def test_a_deleted_file_is_gone(client: openai.OpenAI) -> None:
    created = client.files.create(file=("gone.txt", io.BytesIO(b"bye")), purpose="assistants")

    deleted = client.files.delete(created.id)

    assert deleted.model_dump() == {"id": created.id, "object": "file", "deleted": True}
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError) as caught:
            call(created.id)
        assert caught.value.body == {
            "message": f"No such File object: {created.id}",
            "type": "invalid_request_error",
            "param": "file_id",
            "code": "file_not_found",
        }


def test_an_upload_without_a_file_part_or_with_a_bad_purpose_is_a_400(server: Server) -> None:
    url = f"{server.base_url}/files"
    no_file = httpx.post(url, data={"purpose": "assistants"}, files={"x": ("a", b"a")})
    bad_purpose = httpx.post(url, data={"purpose": "nope"}, files={"file": ("a.txt", b"a")})

    assert no_file.status_code == 400
    assert no_file.json()["error"]["param"] == "file"
    assert bad_purpose.status_code == 400
    assert bad_purpose.json()["error"]["param"] == "purpose"


# --- the server on PostgreSQL, with a small upload limit --------------------------------------


def test_files_work_with_the_postgresql_store(postgres_server: Server) -> None:
    client = postgres_server.client()
    created = upload(client, "pg.txt", b"stored in postgres", purpose="user_data")

    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).read() == b"stored in postgres"
    assert [f.id for f in client.files.list(purpose="user_data")] == [created.id]
    client.files.delete(created.id)
    assert list(client.files.list(purpose="user_data")) == []


def _multipart(size: int) -> bytes:
    head = (
        b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    )
    return head + b"x" * size + b"\r\n--B--\r\n"


@pytest.mark.parametrize("chunked", [False, True])
def test_an_upload_over_the_limit_is_a_413(postgres_server: Server, chunked: bool) -> None:
    body = _multipart(200_000)
    headers = {"content-type": "multipart/form-data; boundary=B"}
    # Chunked, with no Content-Length: the limit must hold while the bytes arrive.
    content = iter([body[:50_000], body[50_000:]]) if chunked else body

    response = httpx.post(f"{postgres_server.base_url}/files", content=content, headers=headers)

    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "message": "The file is larger than this server's limit of 100000 bytes "
            "(OPENRESPONSES_MAX_FILE_BYTES).",
            "type": "invalid_request_error",
            "param": "file",
            "code": "file_too_large",
        }
    }
    assert list(postgres_server.client().files.list(purpose="batch")) == []


def test_an_upload_under_the_limit_is_stored(postgres_server: Server) -> None:
    body = _multipart(90_000)
    headers = {"content-type": "multipart/form-data; boundary=B"}

    response = httpx.post(f"{postgres_server.base_url}/files", content=body, headers=headers)

    assert response.status_code == 200
    assert response.json()["bytes"] == 90_000
    postgres_server.client().files.delete(response.json()["id"])


def test_a_form_field_of_the_wrong_shape_is_a_400(server: Server) -> None:
    answer = httpx.post(
        f"{server.base_url}/files",
        data={"purpose": "assistants", "expires_after": "soon"},
        files={"file": ("a.txt", b"hi")},
        timeout=30,
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": "Invalid type for 'expires_after': expected an object, but got a string "
            "instead.",
            "type": "invalid_request_error",
            "param": "expires_after",
            "code": "invalid_type",
        }
    }


def test_expires_after_may_come_as_one_json_part(server: Server) -> None:
    answer = httpx.post(
        f"{server.base_url}/files",
        files={
            "file": ("a.txt", b"hi"),
            "purpose": (None, b"user_data"),
            "expires_after": (
                None,
                b'{"anchor": "created_at", "seconds": 3600}',
                "application/json",
            ),
        },
        timeout=30,
    )

    assert answer.status_code == 200
    assert answer.json()["expires_at"] == answer.json()["created_at"] + 3600
