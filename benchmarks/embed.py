"""Embedding throughput: the project's path vs bare sentence-transformers on the same texts, same run.

- project: ``Embedder`` the way the embeddings asset uses it on documents: token-aware chunking with the
  model's tokenizer, then batched, normalised encoding (float32);
- bare: ``model.encode(texts, batch_size, normalize_embeddings=True)`` on the same model object.
Texts are market summaries like the pipeline writes (a few hundred characters; one chunk each). Rounds
alternate project/bare; the median of each is used. Last line: one JSON object with documents/s for both and
``"ratio"`` = project / bare (target >= 0.9).

    python benchmarks/embed.py [--documents 1000] [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import _home  # noqa: E402, F401 - its own FKS_HOME and port, before anything reads the settings
import numpy as np  # noqa: E402

from fks_pipelines.lib.rag.documents import market_summary  # noqa: E402
from fks_pipelines.lib.rag.embedder import Embedder  # noqa: E402


def texts(n: int) -> list[str]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        price = float(rng.uniform(10, 70_000))
        day = {
            "market": "spot",
            "symbol": ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3],
            "bucket": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i // 3),
            "open": price,
            "high": price * 1.03,
            "low": price * 0.96,
            "close": price * float(rng.uniform(0.95, 1.05)),
            "volume": float(rng.uniform(1e3, 1e7)),
            "bar_count": 1440,
            "expected_bars": 1440,
            "simple_return": float(rng.normal(0, 0.03)),
            "volatility_7d": float(rng.uniform(0.2, 1.2)),
            "volatility_30d": float(rng.uniform(0.2, 1.0)),
        }
        regime = {"regime": "up_low_vol", "next_day_probabilities": {"up_low_vol": 0.6, "sideways_low_vol": 0.4}}
        indicators = {
            "close": day["close"],
            "rsi_14": float(rng.uniform(10, 90)),
            "macd_hist": float(rng.normal()),
            "sma_50": price,
            "bb_lower": price * 0.97,
            "bb_upper": price * 1.03,
        }
        out.append(market_summary(day, regime, indicators).text)
    return out


def project(embedder: Embedder, documents: list[str]) -> np.ndarray:
    chunks = [c.text for text in documents for c in embedder.chunks(text)]
    return embedder.encode(chunks)


def bare(embedder: Embedder, documents: list[str]) -> np.ndarray:
    return embedder.encoder.encode(
        documents, batch_size=embedder.batch_size, normalize_embeddings=True, show_progress_bar=False
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    documents = texts(args.documents)
    embedder = Embedder(device=args.device)
    print(
        f"{len(documents)} documents, median {int(np.median([len(t) for t in documents]))} characters, device "
        f"{embedder.device_used}, batch {embedder.batch_size}",
        file=sys.stderr,
    )
    np.testing.assert_allclose(
        project(embedder, documents[:64]), bare(embedder, documents[:64]), atol=1e-5
    )  # same vectors
    times: dict[str, list[float]] = {"project": [], "bare": []}
    for r in range(args.rounds):
        for name, fn in (
            (("project", project), ("bare", bare)) if r % 2 == 0 else (("bare", bare), ("project", project))
        ):
            t = time.perf_counter()
            fn(embedder, documents)
            times[name].append(time.perf_counter() - t)
        print(f"  round {r + 1}: project {times['project'][-1]:.2f}s, bare {times['bare'][-1]:.2f}s", file=sys.stderr)
    project_s, bare_s = statistics.median(times["project"]), statistics.median(times["bare"])
    print(
        json.dumps(
            {
                "documents": len(documents),
                "device": embedder.device_used,
                "rounds": args.rounds,
                "project_docs_per_s": round(len(documents) / project_s, 1),
                "bare_docs_per_s": round(len(documents) / bare_s, 1),
                "ratio": round(bare_s / project_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
