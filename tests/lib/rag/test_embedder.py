"""The real model: offline loading, deterministic unit vectors, token-aware chunks, versions from files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fks_pipelines.lib.rag.chunking import chunk_spans
from fks_pipelines.lib.rag.embedder import Embedder, directory_digest, resolve_device


def test_embeddings_are_deterministic_unit_vectors_with_the_models_dimension(embedder):
    texts = ["BTCUSDT fell 8% as volatility spiked", "ETH closed flat", "The weather is sunny in Lisbon"]
    a, b = embedder.encode(texts), embedder.encode(texts)
    assert a.shape == (3, embedder.dimension) == (3, 384) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    one_by_one = np.vstack([embedder.encode([t]) for t in texts])  # padding in a batch changes nothing that matters
    np.testing.assert_allclose(one_by_one, a, atol=1e-5)
    query = embedder.encode(["bitcoin price dropped sharply"])[0]
    assert query @ a[0] > query @ a[1] > query @ a[2]  # meaning, not just tokens


def test_device_auto_is_cpu_without_a_gpu(embedder):
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert embedder.device_used == "cpu"


def test_chunk_windows_overlap_and_cover():
    assert chunk_spans([(0, 1)] * 10, max_tokens=20, overlap=5) == [(0, 10)]
    assert chunk_spans([(0, 1)] * 50, max_tokens=20, overlap=5) == [(0, 20), (15, 35), (30, 50)]
    with pytest.raises(ValueError):
        chunk_spans([(0, 1)], max_tokens=10, overlap=10)


def test_long_texts_are_chunked_by_model_tokens_as_exact_slices(embedder):
    text = " ".join(f"Day {i}: BTC moved {i % 7 - 3}% on volume {i * 13} with RSI {30 + i % 40}." for i in range(120))
    chunks = embedder.chunks(text)
    assert len(chunks) > 3 and chunks == embedder.chunks(text)
    tokenizer = embedder.encoder.tokenizer
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert len(tokenizer(c.text, add_special_tokens=False, verbose=False)["input_ids"]) <= embedder.chunk_tokens
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end  # consecutive chunks overlap...
        overlap = len(tokenizer(text[b.start : a.end], add_special_tokens=False, verbose=False)["input_ids"])
        assert abs(overlap - embedder.chunk_overlap) <= 2  # ...by about chunk_overlap tokens
    short = "ETH closed flat."
    assert [(c.start, c.end, c.text) for c in embedder.chunks(short)] == [(0, len(short), short)]


def test_version_is_a_digest_of_the_model_files(embedder, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(embedder.directory, copy)
    assert directory_digest(copy) == embedder.version
    (copy / "README.md").write_text("a retrained model\n")
    assert directory_digest(copy) != embedder.version
    other = Embedder(model="retrained", model_path=str(copy), device="cpu")
    assert other.version != embedder.version and other.dimension == 384


def test_unknown_models_need_a_path(tmp_path):
    with pytest.raises(ValueError, match="needs a model_path"):
        Embedder(model="bge-large").directory  # noqa: B018
    with pytest.raises(FileNotFoundError, match="not a sentence-transformers model directory"):
        Embedder(model="x", model_path=str(tmp_path)).directory  # noqa: B018
