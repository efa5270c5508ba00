"""`POST /v1/embeddings`: the local all-MiniLM-L6-v2 (against sentence-transformers' own
vectors) and provider models routed like chat."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import openai
import pytest
import tiktoken

from openresponses import tokens
from tests.upstream import ScriptedUpstream

FIXTURES = Path(__file__).parent / "fixtures" / "minilm"
TEXTS: list[str] = json.loads((FIXTURES / "texts.json").read_text(encoding="utf-8"))
REFERENCE = np.array(json.loads((FIXTURES / "reference.json").read_text()), dtype=np.float32)
MODEL = "all-MiniLM-L6-v2"


def test_local_vectors_match_sentence_transformers(client: openai.OpenAI) -> None:
    answer = client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float")

    vectors = np.array([row.embedding for row in answer.data], dtype=np.float32)
    assert [row.index for row in answer.data] == list(range(len(TEXTS)))
    assert vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * REFERENCE).sum(axis=1)
    assert float((1.0 - cosine).max()) < 1e-5
    assert answer.model == MODEL
    assert answer.object == "list"
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > len(TEXTS) * 2


def test_base64_is_little_endian_float32_of_the_same_vector(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model=MODEL, input="hello", encoding_format="float")
    raw = client.with_raw_response.embeddings.create(
        model=MODEL, input="hello", encoding_format="base64"
    )
    packed = json.loads(raw.text)["data"][0]["embedding"]

    decoded = np.frombuffer(base64.b64decode(packed), dtype="<f4")
    assert decoded.tolist() == pytest.approx(floats.data[0].embedding, abs=0)
    # The SDK asks for base64 when no format is given, and decodes it itself.
    assert client.embeddings.create(model=MODEL, input="hello").data[0].embedding == (
        decoded.tolist()
    )


def test_token_arrays_embed_as_their_cl100k_text(client: openai.OpenAI, tmp_path: Path) -> None:
    tokens.seed_cache(tmp_path)  # the encodings as the server has them: nothing is downloaded
    encoding = tiktoken.get_encoding("cl100k_base")
    ids = [encoding.encode(text) for text in TEXTS[:3]]

    one = client.embeddings.create(model=MODEL, input=ids[0], encoding_format="float")
    many = client.embeddings.create(model=MODEL, input=ids, encoding_format="float")

    got = np.array([row.embedding for row in many.data], dtype=np.float32)
    assert np.allclose(got, REFERENCE[:3], atol=1e-5)
    assert np.allclose(one.data[0].embedding, REFERENCE[0], atol=1e-5)


def test_dimensions_other_than_the_models_are_a_400(client: openai.OpenAI) -> None:
    same = client.embeddings.create(model=MODEL, input="x", dimensions=384, encoding_format="float")
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input="x", dimensions=128)

    assert len(same.data[0].embedding) == 384
    assert caught.value.body == {
        "message": "Model 'all-MiniLM-L6-v2' makes 384-dimensional vectors only; "
        "'dimensions' cannot be 128.",
        "type": "invalid_request_error",
        "param": "dimensions",
        "code": "invalid_value",
    }


def test_an_empty_string_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=["fine", ""])

    assert caught.value.body["param"] == "input"  # type: ignore[index]


def test_a_provider_model_is_routed_and_its_answer_relayed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    answer = client.embeddings.create(
        model="openai@text-embedding-3-small",
        input=["first", "second one"],
        dimensions=3,
        encoding_format="float",
    )

    sent = upstream.requests("text-embedding-3-small")[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.json == {
        "model": "text-embedding-3-small",
        "input": ["first", "second one"],
        "dimensions": 3,
        "encoding_format": "float",
    }
    assert sent.headers["authorization"] == "Bearer sk-client"
    assert [row.embedding for row in answer.data] == [[5.0, 0.0, 0.25], [10.0, 1.0, 0.25]]
    assert answer.model == "text-embedding-3-small"
    assert answer.usage.total_tokens == 2
