"""Values a user can type (an interval, a gap rate) are checked in lib: a BadValueError, never an overflow."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.klines import interval_timedelta
from fks_pipelines.lib.sources import SampleSource


@pytest.mark.parametrize("interval", ["99999999999999999999m", "0m", "7m", "1M", "2w", "m", " 1m"])
def test_only_binance_fixed_length_intervals_are_parsed(interval):
    with pytest.raises(ValueError, match="unsupported interval") as raised:
        interval_timedelta(interval)
    assert isinstance(raised.value, BadInputError)
    assert interval_timedelta("1w") == timedelta(weeks=1)  # the longest Binance offers still parses


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2.0, float("nan")])
def test_the_sample_gap_rate_is_a_chance_below_1(rate):
    with pytest.raises(ValueError, match="gap rate"):
        SampleSource(gap_rate=rate)
    assert SampleSource(gap_rate=0.5).gap_rate == 0.5
