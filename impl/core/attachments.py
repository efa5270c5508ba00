"""File references in a model call's input, made inline before the provider is called.

`input_image.file_id` and `input_file.file_id` name uploads of *this* server's Files API,
which no upstream knows (a native Responses upstream has its own ids), and chat-completions
upstreams cannot fetch an `input_file.file_url`. So before every model call the conversation
is rewritten: an image by id becomes a data URL of its type, a file by id (or by URL, for a
provider that cannot fetch one) becomes `file_data` and a `filename`. Adapters then map only
inline forms.

Only the copy sent to the model is rewritten: stored input items keep the `file_id` or URL
the client sent, and every later turn that replays them (a `previous_response_id` chain, a
conversation) resolves them again. That costs a read per turn, so what one call may inline
is capped (`OPENRESPONSES_MAX_ATTACHMENT_BYTES`), and a file a turn cannot afford is a 413
naming it, not a model call the provider would refuse anyway.

A URL left for the provider (an `input_image.image_url`, a `file_url` for a provider that
fetches it) is held to the URL guard's rule (tools.guard) here too, replayed turns included:
the provider fetches from inside our network, so loopback, private and metadata addresses are
a 400 naming the field unless `OPENRESPONSES_ALLOW_PRIVATE_NETWORKS` allows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import AnyUrl

from openresponses.errors import APIError, ErrorKind, invalid, not_found
from openresponses.files.blobs import Blobs
from openresponses.files.media import data_url, file_type, image_type
from openresponses.items import Item
from openresponses.store.files import Files
from openresponses.tools.fetch import FetchFailed, GuardedFetcher
from openresponses.tools.guard import check_content_url

LIMIT_SETTING = "OPENRESPONSES_MAX_ATTACHMENT_BYTES"
FETCH_TIMEOUT = 30.0
"""Seconds a `file_url` may take to download, redirects included."""

_SOURCES = {
    "input_image": ("image_url", "file_id"),
    "input_file": ("file_data", "file_id", "file_url"),
}
"""Where each part type's content may come from; a part needs one."""

_HEADERS = {"Accept": "*/*", "User-Agent": "openresponses (input_file.file_url)"}


@dataclass(frozen=True)
class Origin:
    """Where a model call's items came from, for errors that point at the right parameter:
    `located` maps the ids of this request's input items to their place (`input[2]`); every
    other item was replayed from `elsewhere` (`previous_response_id`, `conversation`)."""

    located: Mapping[str, str]
    elsewhere: str

    @classmethod
    def of(cls, items: list[Item], elsewhere: str) -> Origin:
        """The origin of a request whose `input` became `items`, in order."""
        ids = (getattr(item, "id", None) for item in items)
        return cls({id_: f"input[{n}]" for n, id_ in enumerate(ids) if id_}, elsewhere)

    def param(self, item: Any, path: str) -> str:
        where = self.located.get(getattr(item, "id", None) or "")
        return f"{where}.{path}" if where is not None else self.elsewhere

    def replayed(self, item: Any) -> str:
        """A note for a message about an item that is not in this request's input."""
        if getattr(item, "id", None) in self.located:
            return ""
        return f" (in an earlier input, replayed through '{self.elsewhere}')"


@dataclass
class _Call:
    """One model call's inlining: what it may still inline, and the uploads it has read."""

    origin: Origin
    fetch_urls: bool
    project: str
    """Whose uploads a `file_id` may name."""
    left: int
    limit: int
    read: dict[str, bytes] = field(default_factory=dict)
    guarded: set[str] = field(default_factory=set)

    def spend(self, size: int, what: str, param: str) -> None:
        if size > self.left:
            raise self.too_large(f"{what} ({size} bytes)", param)
        self.left -= size

    def too_large(self, what: str, param: str) -> APIError:
        return APIError(
            ErrorKind.TOO_LARGE,
            f"{what} does not fit in the {self.left} bytes left of this server's limit of "
            f"{self.limit} bytes of files sent to the model in one call ({LIMIT_SETTING}).",
            param=param,
            code="input_too_large",
        )


class Attachments:
    """Resolves file references for the server: one per server, made where the event loop
    runs (it owns the guarded pool `file_url`s are fetched with), closed with it."""

    def __init__(self, files: Files, blobs: Blobs, *, allow_private: bool, max_bytes: int) -> None:
        self.files = files
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self._fetcher = GuardedFetcher(
            allow_private=allow_private, headers=_HEADERS, timeout=FETCH_TIMEOUT
        )

    async def close(self) -> None:
        await self._fetcher.close()

    async def inline(
        self, items: list[Item], origin: Origin, *, fetch_urls: bool, project: str
    ) -> list[Item]:
        """`items` with every file reference inline (a `file_url` only when `fetch_urls`:
        the provider cannot fetch one itself; a `file_id` only of the `project`'s files), and
        every URL left for the provider to fetch held to the URL guard's rule. Items without
        references are the same objects; the others are copies."""
        call = _Call(origin, fetch_urls, project, self.max_bytes, self.max_bytes)
        return [await self._item(call, item) for item in items]

    async def _item(self, call: _Call, item: Any) -> Any:
        kind = getattr(item, "type", "message")
        name = {"message": "content", "function_call_output": "output"}.get(kind)
        parts = getattr(item, name, None) if name else None
        if name is None or not isinstance(parts, list):
            return item
        inlined = [
            await self._part(call, item, part, f"{name}[{index}]")
            for index, part in enumerate(parts)
        ]
        if all(new is old for new, old in zip(inlined, parts, strict=True)):
            return item
        return item.model_copy(update={name: inlined})

    async def _part(self, call: _Call, item: Any, part: Any, path: str) -> Any:
        kind = getattr(part, "type", None)
        if kind in _SOURCES and not any(getattr(part, name) for name in _SOURCES[kind]):
            raise invalid(
                f"An {kind} needs one of {', '.join(_SOURCES[kind])}.",
                param=call.origin.param(item, path),
                code="missing_required_parameter",
            )
        if kind == "input_image":
            return await self._image(call, item, part, path)
        if kind == "input_file":
            return await self._file(call, item, part, path)
        return part

    async def _image(self, call: _Call, item: Any, part: Any, path: str) -> Any:
        if part.image_url is not None:  # the provider fetches it
            param = call.origin.param(item, f"{path}.image_url")
            await self._guard(call, str(part.image_url), param)
            return part
        param = call.origin.param(item, f"{path}.file_id")
        data, filename = await self._upload(call, item, part.file_id, param)
        media = image_type(data)
        if media is None:
            raise invalid(
                f"File '{part.file_id}' ({filename}) is not a PNG, JPEG, GIF or WEBP image, "
                f"so it cannot be an input_image{call.origin.replayed(item)}; send it as an "
                "input_file instead.",
                param=param,
                code="invalid_image_file",
            )
        return part.model_copy(update={"file_id": None, "image_url": _url(media, data)})

    async def _file(self, call: _Call, item: Any, part: Any, path: str) -> Any:
        url_param = call.origin.param(item, f"{path}.file_url")
        if part.file_data or not (part.file_id or call.fetch_urls):
            # Inline already, or the provider fetches: a URL left in it is the provider's.
            if part.file_url is not None:
                await self._guard(call, str(part.file_url), url_param)
            return part
        if part.file_id:
            param = call.origin.param(item, f"{path}.file_id")
            data, filename = await self._upload(call, item, part.file_id, param)
            media = file_type(data, filename)
        else:
            data, filename, media = await self._download(call, str(part.file_url), url_param)
        update = {"file_id": None, "file_url": None, "file_data": data_url(media, data)}
        return part.model_copy(update={**update, "filename": part.filename or filename})

    async def _guard(self, call: _Call, url: str, param: str) -> None:
        """The URL guard's rule for a URL the provider will fetch, once per URL in a call
        (a conversation may send the same image more than once)."""
        if url not in call.guarded:
            await check_content_url(url, allow_private=self.allow_private, param=param)
            call.guarded.add(url)

    async def _upload(self, call: _Call, item: Any, file_id: str, param: str) -> tuple[bytes, str]:
        """An uploaded file's bytes and name; a 404 when there is no such file."""
        record = await self.files.get(call.project, file_id)
        if record is None:
            raise not_found(
                f"No such File object: {file_id}{call.origin.replayed(item)}",
                param=param,
                code="file_not_found",
            )
        call.spend(record.bytes, f"File '{file_id}' ({record.filename})", param)
        if file_id not in call.read:
            call.read[file_id] = await self.blobs.read(file_id)
        return call.read[file_id], record.filename

    async def _download(self, call: _Call, url: str, param: str) -> tuple[bytes, str, str]:
        """The bytes, file name and media type at `url`, through the URL guard; a fetch that
        fails is a 400 saying why (the guard's own refusal is one already)."""
        try:
            fetched = await self._fetcher.get(url, param=param, max_bytes=call.left)
        except FetchFailed as exc:
            raise invalid(
                f"The input_file's file_url could not be fetched: {exc.message}.",
                param=param,
                code="invalid_file_url",
            ) from exc
        if fetched.truncated:
            raise call.too_large(f"The file at {url}", param)
        call.spend(len(fetched.body), f"The file at {url}", param)
        filename = unquote(urlsplit(fetched.url).path.rsplit("/", 1)[-1]) or "file"
        return fetched.body, filename, file_type(fetched.body, filename, fetched.content_type)


def _url(media_type: str, data: bytes) -> AnyUrl:
    """A data URL as the `image_url` field's type (a plain string would not serialise)."""
    return AnyUrl(data_url(media_type, data))
