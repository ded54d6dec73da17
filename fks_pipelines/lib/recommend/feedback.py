"""A record that feeds back: what happened after past recommendations, per (strategy, regime), point-in-time.

The unit is a past decision to hold: a decision day on which a symbol was recommended at a target above dust
(to some account; once per day and symbol, whatever the number of accounts), with the strategy the decision
followed and the symbol's regime that day (recommendations.daily). Its outcome is the symbol's close-to-close
return over ``HORIZON_DAYS`` after the decision day's close; a hit is a positive one. That outcome exists only
once day + ``HORIZON_DAYS`` has closed (the decision time + ``HORIZON_DAYS`` days): before that, it does not count.

The record of (strategy, regime) at a decision is every outcome known by then: their number, hits, mean return,
and the last ``LAST_TIMES`` of them with the moment each became known (``as_of``). The prompt shows it to the LLM
("the last times this was recommended, and what happened"); the rules engine, when ``calibrate`` is on, shrinks
its confidence toward the realised hit rate (:meth:`Record.calibrated`), and so its size.

Outcomes of consecutive days overlap (two 7-day windows a day apart share 6 days), so the record's weight is its
number of independent windows, ``n / HORIZON_DAYS``, not ``n``. The generator's own confidence weighs as
``PRIOR_WINDOWS`` such windows: with a short record the confidence barely moves. Neither number was fitted to
any history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import psycopg

from fks_pipelines.lib.db import marts, recommendations
from fks_pipelines.lib.db.portfolio import accounts_of_market

HORIZON_DAYS = 7  # the outcome's horizon, as the track record's 7-day return
LAST_TIMES = 3  # how many of the last outcomes the prompt shows
PRIOR_WINDOWS = 10.0  # the generator's confidence weighs as this many independent outcome windows


@dataclass(frozen=True)
class Outcome:
    """One past decision to hold ``symbol`` and what followed: the return over HORIZON_DAYS from that day's close."""

    day: date
    symbol: str
    return_7d: float
    as_of: datetime  # when the outcome became known: the end of day + HORIZON_DAYS

    def as_prompt(self) -> dict:
        return {
            "decision_date": self.day.isoformat(),
            "symbol": self.symbol,
            "return_7d": round(self.return_7d, 6),
            "as_of": self.as_of.isoformat(),
        }


@dataclass
class Record:
    """The known outcomes of one (strategy, regime) at one decision time."""

    strategy: str
    regime: str
    n: int = 0
    hits: int = 0
    total_return: float = 0.0
    last: deque[Outcome] = field(default_factory=lambda: deque(maxlen=LAST_TIMES))

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def mean_return(self) -> float | None:
        return self.total_return / self.n if self.n else None

    @property
    def windows(self) -> float:
        """Independent outcome windows: overlapping outcomes of consecutive days count as one per HORIZON_DAYS."""
        return self.n / HORIZON_DAYS

    def add(self, outcome: Outcome) -> None:
        self.n += 1
        self.hits += outcome.return_7d > 0
        self.total_return += outcome.return_7d
        self.last.append(outcome)

    def calibrated(self, confidence: float) -> float:
        """``confidence`` shrunk toward the realised hit rate, each weighted by its evidence: the generator's as
        PRIOR_WINDOWS windows, the record's as its own windows. No record: unchanged."""
        if not self.n:
            return confidence
        rate = self.hits / self.n
        return (PRIOR_WINDOWS * confidence + self.windows * rate) / (PRIOR_WINDOWS + self.windows)

    def snapshot(self) -> Record:
        """A copy frozen at this moment (the book goes on adding to its own)."""
        return Record(self.strategy, self.regime, self.n, self.hits, self.total_return, deque(self.last, LAST_TIMES))

    def as_prompt(self) -> dict:
        """What the prompt shows: the counts, and the last times with what happened and when it became known."""
        return {
            "strategy": self.strategy,
            "regime": self.regime,
            "known_outcomes": self.n,
            "hit_rate_7d": None if self.hit_rate is None else round(self.hit_rate, 4),
            "mean_return_7d": None if self.mean_return is None else round(self.mean_return, 6),
            "last_times": [o.as_prompt() for o in reversed(self.last)],  # the latest first
        }

    def summary(self) -> str:
        """One line for a rationale."""
        if not self.n:
            return f"{self.strategy} in regime {self.regime}: no known outcome yet"
        return (
            f"{self.strategy} in regime {self.regime}: {self.n} known {HORIZON_DAYS}-day outcome(s),"
            f" {self.hit_rate:.0%} up, mean {self.mean_return:+.2%}"
        )


@dataclass(frozen=True)
class _Pending:
    day: date
    symbol: str
    strategy: str
    regime: str

    @property
    def start(self) -> datetime:
        """The decision day's start: the marts' bucket its outcome is measured from."""
        return datetime.combine(self.day, time(), tzinfo=UTC)

    @property
    def known_at(self) -> datetime:
        """The end of day + HORIZON_DAYS, when that close exists (the decision time of that day)."""
        return recommendations.decision_time(self.day + timedelta(days=HORIZON_DAYS))


class FeedbackBook:
    """Every (strategy, regime)'s record during one run over days (lib/recommend/daily.py): seeded from the
    decisions stored before the run's first day, extended with each day's own decisions, and advanced at each
    decision time by the outcomes that became known by then (read from the marts with ``known_by``: a close
    not yet in existence is never read). Decisions whose outcome day has no close are dropped when due."""

    def __init__(self, market: str, pending: Sequence[_Pending] = ()):
        self.market = market
        self.pending: deque[_Pending] = deque(sorted(pending, key=lambda p: (p.day, p.symbol)))
        self.records: dict[tuple[str, str], Record] = {}

    @classmethod
    def seed(cls, conn: psycopg.Connection, market: str, first_day: date) -> FeedbackBook:
        accounts = accounts_of_market(conn, market)
        rows = recommendations.long_decisions(conn, accounts, before=first_day) if accounts else []
        return cls(market, [_Pending(day, symbol, strategy, regime) for day, symbol, strategy, regime, _ in rows])

    def advance(self, conn: psycopg.Connection, at: datetime) -> None:
        """Count every pending outcome known by ``at``."""
        due: list[_Pending] = []
        while self.pending and self.pending[0].known_at <= at:
            due.append(self.pending.popleft())
        if not due:
            return
        starts = sorted({(p.symbol, p.start) for p in due})
        returns = marts.forward_returns(conn, self.market, starts, (HORIZON_DAYS,), known_by=at)
        for p in due:
            value = returns.get((p.symbol, p.start), {}).get(HORIZON_DAYS)
            if value is not None:
                record = self.records.setdefault((p.strategy, p.regime), Record(p.strategy, p.regime))
                record.add(Outcome(p.day, p.symbol, value, p.known_at))

    def record(self, strategy: str | None, regime: str | None) -> Record | None:
        """The (strategy, regime)'s record as of the last advance (empty when nothing is known yet)."""
        if not strategy or not regime or strategy == "cash":
            return None
        return self.records.get((strategy, regime), Record(strategy, regime)).snapshot()

    def attach(self, conn: psycopg.Connection, contexts: Sequence, calibrate: bool) -> None:
        """Give each context's symbols (lib/recommend/schema.SymbolContext) the record of what they follow, as of
        the decision time, and say whether the rules engine calibrates its confidence by it."""
        if not contexts:
            return
        self.advance(conn, contexts[0].decided_at)
        for c in contexts:
            c.calibrate = calibrate
            for s in c.symbols:
                s.record = self.record(s.chosen_strategy, s.regime_name)

    def add_day(self, day: date, generations: Sequence) -> None:
        """The day's decisions to hold (some account's target above dust), pending until their outcome is known."""
        held: dict[str, _Pending] = {}
        for g in generations:
            for r in g.recommendations:
                if r.target_allocation > recommendations.LONG_DUST and r.strategy and r.regime:
                    held.setdefault(r.symbol, _Pending(day, r.symbol, r.strategy, r.regime))
        self.pending.extend(held[s] for s in sorted(held))


def records_at(conn: psycopg.Connection, market: str, day: date) -> FeedbackBook:
    """The book as the decision of ``day`` saw it (for ``fks explain`` and tests): every stored decision before
    ``day``, every outcome known at its decision time."""
    book = FeedbackBook.seed(conn, market, day)
    book.advance(conn, recommendations.decision_time(day))
    return book
