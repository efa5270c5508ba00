"""File bytes, one file per id under `<data dir>/files`.

The bytes stay out of the database: DuckDB and PostgreSQL would hold them in memory to write
and read them, and uploads may be hundreds of megabytes. A blob is written to a temporary name
and renamed into place, so a crash mid-upload never leaves a truncated blob under a real id.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO


def new_file_id() -> str:
    """An id shaped like OpenAI's (`file-` and 24 characters)."""
    return f"file-{secrets.token_hex(12)}"


class Blobs:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, file_id: str) -> Path:
        if not file_id.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"not a file id: {file_id!r}")
        return self.directory / file_id

    async def save(self, file_id: str, source: BinaryIO) -> int:
        """Copies `source` to the blob of `file_id`; returns its size in bytes."""
        return await asyncio.to_thread(self._save, file_id, source)

    def _save(self, file_id: str, source: BinaryIO) -> int:
        target = self.path(file_id)
        partial = target.with_name(f".{file_id}.partial")
        with partial.open("wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        size = partial.stat().st_size
        os.replace(partial, target)
        return size

    async def read(self, file_id: str) -> bytes:
        return await asyncio.to_thread(self.path(file_id).read_bytes)

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(self.path(file_id).unlink, True)
