"""Row-level data-quality rules for klines, validated by Great Expectations 1.x (called directly).

Each rule returns a RuleResult a person can act on: whether it passed, how many rows fail, and a few of
them. Derived columns (max/min of open and close, the expected close time, the bar-to-bar return) are
computed in polars first, so each rule is a single stock expectation. Prices are compared as float64:
the conversion from exact decimals is monotonic, so ``>=``/``<=`` rules keep their meaning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import polars as pl

from fks_pipelines.lib.klines import DECIMAL_COLUMNS, interval_timedelta

if TYPE_CHECKING:
    from great_expectations.core import ExpectationValidationResult

KEY = ["market", "symbol", "interval", "open_time"]
DEFAULT_PRICE_JUMP_THRESHOLD = 0.10  # a 10% move within one bar is worth a look


@dataclass(frozen=True)
class RuleResult:
    name: str
    passed: bool
    failing_rows: int
    examples: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        if self.passed:
            return f"{self.name}: ok"
        return f"{self.name}: {self.failing_rows} failing row(s), e.g. {self.examples[:3]}"


@lru_cache(maxsize=1)
def _batch_definition():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    asset = context.data_sources.add_pandas("fks_quality").add_dataframe_asset("klines")
    return asset.add_batch_definition_whole_dataframe("frame")


def _prepared(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with the derived columns the rules compare, decimals as float64."""
    expected_close = pl.lit(None, dtype=frame.schema["open_time"])
    for interval in frame["interval"].unique().to_list():
        offset = interval_timedelta(interval) - timedelta(milliseconds=1)
        expected_close = (
            pl.when(pl.col("interval") == interval).then(pl.col("open_time") + offset).otherwise(expected_close)
        )
    return (
        frame.sort(KEY)
        .with_columns([pl.col(c).cast(pl.Float64) for c in DECIMAL_COLUMNS])
        .with_columns(
            max_open_close=pl.max_horizontal("open", "close"),
            min_open_close=pl.min_horizontal("open", "close"),
            expected_close_time=expected_close,
            bar_return=(pl.col("close") / pl.col("close").shift(1).over(["market", "symbol", "interval"]) - 1)
            .abs()
            .fill_null(0.0),
        )
    )


def validate_bar_rules(
    frame: pl.DataFrame, *, price_jump_threshold: float = DEFAULT_PRICE_JUMP_THRESHOLD
) -> dict[str, RuleResult]:
    """Evaluate every row rule on ``frame`` (a kline frame); keys are the rule names used as check names."""
    import great_expectations.expectations as gxe
    from great_expectations import ExpectationSuite

    names = {
        "unique_natural_key": gxe.ExpectCompoundColumnsToBeUnique(column_list=KEY),
        "high_not_below_open_close": gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="high", column_B="max_open_close", or_equal=True
        ),
        "low_not_above_open_close": gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="min_open_close", column_B="low", or_equal=True
        ),
        **{
            f"{c}_non_negative": gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0)
            for c in ("volume", "quote_volume", "taker_buy_base", "taker_buy_quote", "trades")
        },
        "close_time_is_open_plus_interval_minus_1ms": gxe.ExpectColumnPairValuesToBeEqual(
            column_A="close_time", column_B="expected_close_time"
        ),
        "price_jump_within_threshold": gxe.ExpectColumnValuesToBeBetween(
            column="bar_return", max_value=price_jump_threshold
        ),
    }
    if frame.height == 0:
        return {name: RuleResult(name, True, 0) for name in names}
    batch_definition = _batch_definition()  # creates the ephemeral context the suite needs
    prepared = _prepared(frame)
    suite = ExpectationSuite(name="klines")
    for expectation in names.values():
        suite.add_expectation(expectation)
    pandas_frame = prepared.to_pandas()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": pandas_frame})
    validation = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    by_type: dict[str, list] = {}
    for result in validation.results:
        by_type.setdefault(result.expectation_config.type, []).append(result)
    results = {}
    for name, expectation in names.items():
        result = _match(by_type[expectation.expectation_type], expectation)
        indexes = list(result.result.get("unexpected_index_list") or [])[:5]
        examples = [
            {
                k: str(v)
                for k, v in pandas_frame.iloc[i][["symbol", "open_time", "open", "high", "low", "close"]].items()
            }
            | (
                {"bar_return": round(float(pandas_frame.iloc[i]["bar_return"]), 6)}
                if name.startswith("price_jump")
                else {}
            )
            for i in indexes
        ]
        results[name] = RuleResult(
            name, bool(result.success), int(result.result.get("unexpected_count") or 0), examples
        )
    return results


def _match(candidates: list, expectation) -> ExpectationValidationResult:
    """The validation result belonging to ``expectation`` (several share a type; their kwargs differ)."""
    wanted = {
        k: v
        for k, v in expectation.configuration.kwargs.items()
        if k in ("column", "column_A", "column_B", "column_list")
    }
    for candidate in candidates:
        kwargs = candidate.expectation_config.kwargs
        if all(kwargs.get(k) == v for k, v in wanted.items()):
            return candidate
    raise LookupError(f"no validation result for {expectation.expectation_type} {wanted}")
