"""The Great Expectations row rules, each shown to catch a planted fault."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest

from fks_pipelines.lib.quality.rules import validate_bar_rules
from fks_pipelines.lib.sources.sample import sample_klines


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    return sample_klines(["BTCUSDT", "ETHUSDT"], date(2024, 6, 1), date(2024, 6, 2))


def plant(frame: pl.DataFrame, row: int, **values) -> pl.DataFrame:
    index = pl.int_range(pl.len())
    return frame.with_columns(**{c: pl.when(index == row).then(v).otherwise(pl.col(c)) for c, v in values.items()})


def test_clean_sample_passes_every_rule(clean):
    results = validate_bar_rules(clean)
    assert all(r.passed for r in results.values()), [r.describe() for r in results.values() if not r.passed]


@pytest.mark.parametrize(
    ("rule", "change"),
    [
        ("high_not_below_open_close", {"high": pl.col("low")}),
        ("low_not_above_open_close", {"low": pl.col("high")}),
        ("volume_non_negative", {"volume": pl.lit(Decimal("-1")).cast(pl.Decimal(38, 8))}),
        ("trades_non_negative", {"trades": pl.lit(-3, dtype=pl.Int64)}),
        ("close_time_is_open_plus_interval_minus_1ms", {"close_time": pl.col("close_time") + timedelta(seconds=1)}),
        ("price_jump_within_threshold", {"close": pl.col("close") * 2, "high": pl.col("close") * 2}),
    ],
)
def test_each_rule_catches_its_fault(clean, rule, change):
    broken = plant(clean, 300, **change)
    results = validate_bar_rules(broken)
    assert not results[rule].passed
    assert results[rule].failing_rows >= 1
    assert results[rule].examples[0]["symbol"] == "BTCUSDT"
    untouched = {"unique_natural_key", "quote_volume_non_negative", "taker_buy_base_non_negative"}
    assert all(results[r].passed for r in untouched)


def test_duplicate_key_is_caught(clean):
    results = validate_bar_rules(pl.concat([clean, clean.slice(10, 1)]))
    assert not results["unique_natural_key"].passed
    assert results["unique_natural_key"].failing_rows == 2


def test_jump_threshold_is_configurable(clean):
    assert not validate_bar_rules(clean, price_jump_threshold=1e-6)["price_jump_within_threshold"].passed
    assert validate_bar_rules(clean, price_jump_threshold=0.5)["price_jump_within_threshold"].passed
