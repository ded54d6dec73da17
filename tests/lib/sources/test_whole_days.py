"""The days a freqtrade directory holds whole: the real demo's window ends on the bundled history's last whole day."""

from __future__ import annotations

from datetime import date

import pytest

from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.sources.freqtrade import whole_days
from fks_pipelines.settings import BUNDLED_FREQTRADE_DIR


def test_the_bundled_history_is_whole_from_its_first_midnight_to_its_last():
    # The 1h files start 2017-08-17 04:00 (a partial first day) and end 2022-10-11 10:00 (a partial last day).
    assert whole_days(BUNDLED_FREQTRADE_DIR, ["BTCUSDT", "ETHUSDT"], "1h") == (date(2017, 8, 18), date(2022, 10, 10))
    # The daily files hold 2017-08-17 .. 2022-10-10, each day a whole bar.
    assert whole_days(BUNDLED_FREQTRADE_DIR, ["BTCUSDT"], "1d") == (date(2017, 8, 17), date(2022, 10, 10))


def test_a_symbol_without_a_file_is_one_line_naming_it():
    with pytest.raises(BadInputError, match="no spot 1h freqtrade file for SOLUSDT"):
        whole_days(BUNDLED_FREQTRADE_DIR, ["BTCUSDT", "SOLUSDT"], "1h")
