"""`/v1/files` handlers (operationIds createFile, listFiles, retrieveFile, deleteFile,
downloadFile).

Uploads are multipart forms, which connexion parses before the handler runs (the size limit
is enforced earlier still, in `files.limits`); the form's fields are checked with the
generated `CreateFileRequest`, its `file` part streamed to the blob directory.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Literal

import orjson
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, Response

from openresponses.api.common import (
    body_model,
    check_limit,
    current,
    json_response,
    operation_id,
    parse_body,
    project,
    services,
)
from openresponses.core.services import Services
from openresponses.errors import APIError, ErrorKind, invalid, not_found
from openresponses.files.blobs import new_file_id
from openresponses.files.limits import too_large
from openresponses.generated import openai_models as m
from openresponses.store.objects_db import Window


def _form_fields(form: dict[str, Any]) -> dict[str, Any]:
    """The form's fields as JSON: `expires_after[anchor]`-style keys (how the SDKs send
    nested objects) become nested objects, numbers become numbers; a nested object may also
    come as one JSON part (OpenAPI's default for an object in a form)."""
    fields: dict[str, Any] = {}
    for key, value in form.items():
        value = value[0] if isinstance(value, list) and len(value) == 1 else value
        name, _, rest = key.partition("[")
        if rest:
            inner = fields.setdefault(name, {})
            if isinstance(inner, dict):
                inner[rest.rstrip("]")] = int(value) if str(value).isdigit() else value
        else:
            fields[name] = _json_object(value)
    return fields


def _json_object(value: Any) -> Any:
    """`value` as the JSON object it spells, else as it is (the model says what is wrong)."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            return orjson.loads(value)
    return value


async def create_file(body: dict[str, Any] | None = None, file: Any = None) -> Response:
    """connexion hands over the parsed form: `body` its fields, `file` the file part."""
    if not isinstance(file, UploadFile):
        raise invalid(
            "Missing required parameter: 'file' (a multipart file part).",
            param="file",
            code="missing_required_parameter",
        )
    upload = file
    req = current()
    form = parse_body({**_form_fields(body or {}), "file": b""}, body_model(operation_id(req)))
    assert isinstance(form, m.CreateFileRequest)
    found = services(req)
    file_id = new_file_id()
    size = await found.blobs.save(file_id, upload.file)
    if size > found.settings.max_file_bytes:  # the form's framing hid a few bytes from the check
        await found.blobs.delete(file_id)
        raise too_large(found.settings.max_file_bytes)
    now = int(time.time())
    expires = form.expires_after
    record = m.OpenAIFile.model_construct(
        id=file_id,
        object="file",
        bytes=size,
        created_at=now,
        expires_at=now + expires.seconds if expires else None,
        filename=upload.filename or "upload",
        purpose=form.purpose,
        status="processed",
    )
    owner = project(req)
    quota = await _quota(found, owner)
    if not await found.objects.files.add(owner, record, quota):
        await found.blobs.delete(file_id)
        raise _over_quota(size, quota)
    return json_response(_dump(record))


async def _quota(found: Services, owner: str) -> int | None:
    """The project's storage quota: its own (`keys create --max-storage-bytes`), else the
    server's default for every project."""
    own = await found.keys.project(owner)
    if own is not None and own.max_storage_bytes is not None:
        return own.max_storage_bytes
    return found.settings.project_storage_bytes


def _over_quota(size: int, quota: int | None) -> APIError:
    return APIError(
        ErrorKind.TOO_LARGE,
        f"Uploading this file ({size} bytes) would take the project's files past its storage "
        f"quota of {quota} bytes. Delete files to make room, or raise the quota "
        "(OPENRESPONSES_PROJECT_STORAGE_BYTES, or `openresponses keys create "
        "--max-storage-bytes`).",
        param="file",
        code="storage_quota_exceeded",
    )


def _dump(file: m.OpenAIFile) -> dict[str, Any]:
    return file.model_dump(mode="json", warnings=False)


def missing_file(file_id: str, param: str = "file_id") -> Exception:
    return not_found(f"No such File object: {file_id}", param=param, code="file_not_found")


async def _file(file_id: str) -> m.OpenAIFile:
    req = current()
    found = await services(req).objects.files.get(project(req), file_id)
    if found is None:
        raise missing_file(file_id)
    return found


def listing(data: list[dict[str, Any]], has_more: bool, key: str = "id") -> Response:
    """OpenAI's cursor page: `first_id` / `last_id` are null on an empty page."""
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0][key] if data else None,
            "last_id": data[-1][key] if data else None,
            "has_more": has_more,
        }
    )


async def list_files(
    purpose: str | None = None,
    limit: int = 10000,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Response:
    check_limit(limit, 10000)
    window = Window(limit, order, after)
    req = current()
    page = await services(req).objects.files.page(project(req), purpose, window)
    return listing([_dump(file) for file in page.items], page.has_more)


async def retrieve_file(file_id: str) -> Response:
    return json_response(_dump(await _file(file_id)))


async def download_file(file_id: str) -> Response:
    file = await _file(file_id)
    path = services(current()).blobs.path(file.id)
    return FileResponse(path, media_type="application/octet-stream")


async def delete_file(file_id: str) -> Response:
    req = current()
    found = services(req)
    if await found.objects.files.delete(project(req), file_id) is None:
        raise missing_file(file_id)
    await found.ingestor.index.remove(None, file_id)  # its chunks leave every store's search
    await found.blobs.delete(file_id)
    return json_response({"id": file_id, "object": "file", "deleted": True})
