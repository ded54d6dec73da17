"""Synthetic embeddings shaped like real ones, for recall tests and the vector-search benchmark.

Sentence embeddings are not isotropic noise: they cluster by topic and, within a topic, vary along a few
directions (a low intrinsic dimension). Isotropic Gaussian clusters in 384 dimensions put every member at
almost the same distance from a query (concentration of measure), which makes "the 10 nearest" a coin toss
that no index can reproduce. Here each cluster has its own centre and its own ``intrinsic_dim``-dimensional
subspace, plus a little isotropic noise; vectors are unit length (cosine).
"""

from __future__ import annotations

import numpy as np


def clustered_vectors(
    n: int, dim: int, rng: np.random.Generator, *, clusters: int = 50, intrinsic_dim: int = 12, noise: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors float32 n x dim, cluster label per vector)."""
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.normal(size=(clusters, dim, intrinsic_dim)) / np.sqrt(dim)
    labels = rng.integers(0, clusters, n)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):  # bounded temporaries for a million vectors
        lab = labels[start : start + 50_000]
        z = rng.normal(size=(len(lab), intrinsic_dim, 1))
        x = centres[lab] + 0.6 * (bases[lab] @ z)[:, :, 0] + noise * rng.normal(size=(len(lab), dim))
        out[start : start + 50_000] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, labels


def queries_near(vectors: np.ndarray, count: int, rng: np.random.Generator, jitter: float = 0.05) -> np.ndarray:
    """Queries like real ones: near the data (a stored vector moved a little), not the data itself."""
    picked = (
        vectors[rng.integers(0, len(vectors), count)]
        + jitter * rng.normal(size=(count, vectors.shape[1])) / np.sqrt(vectors.shape[1]) * 10
    )
    return (picked / np.linalg.norm(picked, axis=1, keepdims=True)).astype(np.float32)
