"""The real history shipped in the package (fks_pipelines/data/freqtrade) is the shared freqtrade files, row for
row, in freqtrade's own jsongz layout, and reads as such."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import fks_pipelines
from fks_pipelines.lib.sources.freqtrade import read_freqtrade_file

BUNDLED = Path(fks_pipelines.__file__).parent / "data" / "freqtrade"
NAMES = ("BTC_USDT-1h", "BTC_USDT-1d", "ETH_USDT-1h", "ETH_USDT-1d")


@pytest.mark.parametrize("name", NAMES)
def test_bundled_file_equals_the_shared_file(shared_data, name):
    shared = shared_data / "freqtrade" / f"{name}.json"
    if not shared.exists():
        pytest.skip(f"shared data absent: {shared}")
    bundled = BUNDLED / f"{name}.json.gz"
    assert json.loads(gzip.decompress(bundled.read_bytes())) == json.loads(shared.read_bytes())
    assert read_freqtrade_file(bundled).frame.height == len(json.loads(shared.read_bytes()))


def test_bundled_files_are_small_and_documented():
    assert sorted(p.name for p in BUNDLED.glob("*.json.gz")) == sorted(f"{n}.json.gz" for n in NAMES)
    assert sum(p.stat().st_size for p in BUNDLED.glob("*.json.gz")) < 2_200_000
    readme = (BUNDLED / "README.md").read_text()
    assert "djienne/3EMA_SRSI_ATR" in readme and "27" in readme and "Licence" in readme
