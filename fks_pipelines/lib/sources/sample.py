"""A deterministic generator of realistic 1-minute bars: the offline default of ``make demo``.

Each (symbol, day) is generated from its own seed, so any partition is reproducible on its own and
re-generating a day always yields the same rows, whichever range it is asked for in. The shape is what a
quant expects of crypto minute bars:
- a daily price path with GARCH(1,1) volatility clustering (heavy-tailed daily returns), from a fixed epoch;
- within the day, Student-t minute returns with an intraday volatility and volume profile (Asia open at
  00:00 UTC, Europe at 07:00-08:00, the US session 13:30-16:00), bridged so the day's last close is the
  next day's open (days join up);
- consistent OHLC on the price tick, volume tied to the size of the move, trades and taker-buy volumes
  derived from it;
- optional gaps (``gap_rate``: the chance a minute is missing, in short runs), off by default.

Any valid symbol works: the five in SAMPLE_SYMBOLS keep hand-set parameters; every other symbol gets parameters
derived deterministically from its name (:func:`sample_symbol`), so ``FKS_SYMBOLS`` can name hundreds offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from fks_pipelines.lib.errors import BadInputError, BadValueError
from fks_pipelines.lib.klines import KLINE_COLUMNS, PRICE, TIME, empty_klines
from fks_pipelines.lib.symbols import check_symbol

EPOCH = date(2020, 1, 1)
MINUTES_PER_DAY = 1440


def check_gap_rate(rate: float) -> float:
    """``rate`` if it is a chance a minute is missing, in [0, 1) (not NaN), else a :class:`BadValueError`."""
    if not 0 <= rate < 1:
        raise BadValueError(f"gap rate {rate} is not within [0, 1)")
    return rate


@dataclass(frozen=True)
class SampleSymbol:
    start_price: float  # price on EPOCH
    daily_vol: float  # long-run daily volatility of log returns
    drift: float  # daily log drift
    minute_volume: float  # average base volume per minute
    tick: float  # price tick
    lot: float  # volume step
    avg_trade_size: float  # base units per trade


SAMPLE_SYMBOLS: dict[str, SampleSymbol] = {
    "BTCUSDT": SampleSymbol(7200.0, 0.032, 0.0009, 18.0, 0.01, 1e-5, 0.02),
    "ETHUSDT": SampleSymbol(130.0, 0.042, 0.0011, 260.0, 0.01, 1e-4, 0.35),
    "SOLUSDT": SampleSymbol(1.5, 0.058, 0.0018, 4200.0, 0.01, 1e-2, 6.0),
    "BNBUSDT": SampleSymbol(13.7, 0.038, 0.0012, 900.0, 0.1, 1e-3, 1.5),
    "XRPUSDT": SampleSymbol(0.19, 0.045, 0.0006, 250000.0, 0.0001, 1.0, 400.0),
}


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def _power_of_ten_at_most(value: float) -> float:
    return float(10.0 ** np.floor(np.log10(value)))


@lru_cache(maxsize=4096)
def sample_symbol(symbol: str) -> SampleSymbol:
    """The generator's parameters for ``symbol``: the hand-set ones of the five known symbols, else drawn from a
    generator seeded by the name alone (same name, same parameters, on every machine), within ranges seen on
    Binance spot USDT pairs: price on 2020-01-01 from 0.001 to 5,000 USDT (log-uniform), daily volatility 3.5-9 %,
    daily drift 0-0.15 %, 2,000-400,000 USDT traded per minute, a tick of about 1/10,000 of the price, a lot worth
    about 0.01-0.1 USDT and trades of 50-800 USDT on average."""
    check_symbol(symbol, where="sample source")
    known = SAMPLE_SYMBOLS.get(symbol)
    if known is not None:
        return known
    rng = np.random.default_rng(_seed("sample-symbol", symbol))
    price = float(np.exp(rng.uniform(np.log(0.001), np.log(5000.0))))
    notional_per_minute = float(np.exp(rng.uniform(np.log(2_000.0), np.log(400_000.0))))
    trade_notional = float(np.exp(rng.uniform(np.log(50.0), np.log(800.0))))
    tick = _power_of_ten_at_most(price * 1e-4)
    start_price = max(float(np.round(price / tick) * tick), tick * 100)
    return SampleSymbol(
        start_price=start_price,
        daily_vol=float(rng.uniform(0.035, 0.09)),
        drift=float(rng.uniform(0.0, 0.0015)),
        minute_volume=notional_per_minute / start_price,
        tick=tick,
        lot=_power_of_ten_at_most(0.1 / start_price),
        avg_trade_size=trade_notional / start_price,
    )


@lru_cache(maxsize=64)
def _daily_path(seed: int, symbol: str, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Opening log-price and volatility of each day from EPOCH, for ``days + 1`` days (GARCH(1,1))."""
    spec = sample_symbol(symbol)
    rng = np.random.default_rng(_seed(seed, symbol, "daily"))
    alpha, beta = 0.10, 0.84
    long_var = spec.daily_vol**2
    omega = long_var * (1 - alpha - beta)
    shocks = rng.standard_t(df=5, size=days + 1) / np.sqrt(5 / 3)
    log_open = np.empty(days + 2)
    sigma = np.empty(days + 1)
    log_open[0] = np.log(spec.start_price)
    var, ret = long_var, 0.0
    for d in range(days + 1):
        var = omega + alpha * ret**2 + beta * var
        sigma[d] = np.sqrt(var)
        # Mean reversion towards a slow trend keeps prices in a plausible band over years.
        trend = np.log(spec.start_price) + spec.drift * d
        ret = spec.drift + sigma[d] * shocks[d] - 0.002 * (log_open[d] - trend)
        log_open[d + 1] = log_open[d] + ret
    return log_open, sigma


def _intraday_profile() -> np.ndarray:
    """Relative volatility/volume by minute of the UTC day (mean 1)."""
    m = np.arange(MINUTES_PER_DAY)
    hours = m / 60.0
    profile = (
        1.0
        + 0.55 * np.exp(-0.5 * ((hours - 0.5) / 0.9) ** 2)  # Asia open
        + 0.35 * np.exp(-0.5 * ((hours - 7.5) / 1.0) ** 2)  # Europe open
        + 0.95 * np.exp(-0.5 * ((hours - 14.5) / 1.3) ** 2)  # US session
        - 0.30 * np.exp(-0.5 * ((hours - 4.0) / 1.5) ** 2)  # quiet Asian afternoon
    )
    return profile / profile.mean()


_PROFILE = _intraday_profile()


def _round_to(values: np.ndarray, step: float, how: str = "nearest") -> np.ndarray:
    scaled = values / step
    rounders: dict[str, Callable[[np.ndarray], np.ndarray]] = {"nearest": np.round, "up": np.ceil, "down": np.floor}
    fn = rounders[how]
    return np.round(fn(np.round(scaled, 6)) * step, 8)


def sample_day(symbol: str, day: date, *, seed: int = 42, gap_rate: float = 0.0) -> pl.DataFrame:
    """One UTC day of 1-minute spot bars for ``symbol``; identical output for identical arguments."""
    spec = sample_symbol(symbol)
    index = (day - EPOCH).days
    if index < 0:
        raise BadInputError(f"the sample source starts on {EPOCH}; {day} is before it")
    log_open, sigma = _daily_path(seed, symbol, _horizon(index))
    rng = np.random.default_rng(_seed(seed, symbol, day.isoformat()))

    # Minute volatility: intraday profile x a slowly varying (AR(1) in logs) clustering factor.
    log_cluster = np.empty(MINUTES_PER_DAY)
    eps = rng.normal(0.0, 0.08, MINUTES_PER_DAY)
    log_cluster[0] = eps[0] * 3
    for i in range(1, MINUTES_PER_DAY):
        log_cluster[i] = 0.985 * log_cluster[i - 1] + eps[i]
    minute_sigma = _PROFILE * np.exp(log_cluster)
    minute_sigma *= sigma[index] / np.sqrt(np.sum(minute_sigma**2))
    returns = minute_sigma * rng.standard_t(df=4, size=MINUTES_PER_DAY) / np.sqrt(2.0)
    path = np.cumsum(returns)
    # Brownian bridge: the last close equals the next day's open.
    target = log_open[index + 1] - log_open[index]
    path += np.arange(1, MINUTES_PER_DAY + 1) / MINUTES_PER_DAY * (target - path[-1])
    closes = np.exp(log_open[index] + path)
    opens = np.concatenate([[np.exp(log_open[index])], closes[:-1]])

    o = _round_to(opens, spec.tick)
    c = _round_to(closes, spec.tick)
    wick = np.abs(rng.normal(0.0, 0.6, (2, MINUTES_PER_DAY))) * minute_sigma
    h = np.maximum(_round_to(np.maximum(o, c) * np.exp(wick[0]), spec.tick, "up"), np.maximum(o, c))
    low = np.minimum(_round_to(np.minimum(o, c) * np.exp(-wick[1]), spec.tick, "down"), np.minimum(o, c))
    low = np.maximum(low, spec.tick)

    move = np.abs(returns) / np.maximum(minute_sigma, 1e-12)
    volume = spec.minute_volume * _PROFILE * (0.5 + 0.5 * move) * rng.lognormal(0.0, 0.45, MINUTES_PER_DAY)
    volume = _round_to(volume, spec.lot)
    typical = (o + h + low + c) / 4
    quote_volume = np.round(volume * typical, 8)
    trades = np.where(volume > 0, rng.poisson(volume / spec.avg_trade_size) + 1, 0).astype(np.int64)
    taker_share = rng.beta(6, 6, MINUTES_PER_DAY) + np.sign(returns) * 0.05
    taker_buy_base = _round_to(np.clip(taker_share, 0, 1) * volume, spec.lot)
    taker_buy_base = np.minimum(taker_buy_base, volume)
    taker_buy_quote = np.round(taker_buy_base * typical, 8)

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    open_time = pl.datetime_range(
        start,
        start + timedelta(minutes=MINUTES_PER_DAY - 1),
        interval="1m",
        eager=True,
        time_unit="us",
        time_zone="UTC",
    )
    frame = pl.DataFrame(
        {
            "market": "spot",
            "symbol": symbol,
            "interval": "1m",
            "open_time": open_time,
            "close_time": open_time + timedelta(minutes=1) - timedelta(milliseconds=1),
            "open": pl.Series(o).cast(PRICE),
            "high": pl.Series(h).cast(PRICE),
            "low": pl.Series(low).cast(PRICE),
            "close": pl.Series(c).cast(PRICE),
            "volume": pl.Series(volume).cast(PRICE),
            "quote_volume": pl.Series(quote_volume).cast(PRICE),
            "trades": trades,
            "taker_buy_base": pl.Series(taker_buy_base).cast(PRICE),
            "taker_buy_quote": pl.Series(taker_buy_quote).cast(PRICE),
        }
    ).with_columns(pl.col("open_time").cast(TIME), pl.col("close_time").cast(TIME))
    if gap_rate > 0:
        frame = frame.filter(pl.Series(~_gap_mask(rng, gap_rate)))
    return frame.select(KLINE_COLUMNS)


def _horizon(index: int) -> int:
    """Days of daily path to generate: rounded up so one cached path serves many days."""
    return (index // 512 + 1) * 512


def _gap_mask(rng: np.random.Generator, gap_rate: float) -> np.ndarray:
    """Missing minutes in short runs (1-15 minutes), about ``gap_rate`` of the day in all."""
    mask = np.zeros(MINUTES_PER_DAY, dtype=bool)
    runs = rng.poisson(gap_rate * MINUTES_PER_DAY / 8)
    for _ in range(runs):
        start = int(rng.integers(0, MINUTES_PER_DAY))
        mask[start : start + int(rng.integers(1, 16))] = True
    return mask


def sample_klines(
    symbols: Sequence[str], start: date, end: date, *, seed: int = 42, gap_rate: float = 0.0
) -> pl.DataFrame:
    """Bars for ``symbols`` on the UTC days ``start <= day < end``."""
    frames = [
        sample_day(symbol, start + timedelta(days=i), seed=seed, gap_rate=gap_rate)
        for i in range((end - start).days)
        for symbol in symbols
    ]
    return pl.concat(frames) if frames else empty_klines()
