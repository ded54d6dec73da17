"""The daily recommendation over a run's days: each day, the paper ledgers first take the previous day's fills,
then every account is decided from its point-in-time context (the LLM, or the rules engine without one), and,
beside an LLM, the rules engine decides for each paper account's shadow ledger from the same inputs.

A re-run replays the paper accounts (and their shadow ledgers) from the window's first fill on. Fills of later days
that were removed and not replayed leave a hole in the ledger: recorded (``recommendations.ledger_holes``), so the
evaluation refuses the ledger until those days are re-run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg

from fks_pipelines.lib.db import recommendations
from fks_pipelines.lib.db.portfolio import delete_paper_fills_after, paper_fill_ids_after
from fks_pipelines.lib.llm.client import InProcessVLLM, OpenAICompatibleClient
from fks_pipelines.lib.recommend import inputs
from fks_pipelines.lib.recommend.feedback import FeedbackBook
from fks_pipelines.lib.recommend.generate import Generation, generate
from fks_pipelines.lib.recommend.guard_book import GuardBook
from fks_pipelines.lib.recommend.inputs import Retriever
from fks_pipelines.lib.recommend.ledgers import fill_paper_accounts, fill_shadow_ledgers, shadow_generations


@dataclass
class DailyRun:
    """What a run over ``days`` did: every account's generation per day, the fills written to the paper
    accounts and the shadow ledgers, the shadow generations, and the paper fills it removed and did not replay
    (per account) with the ledger holes they leave."""

    days: list[date]
    generations: list[tuple[date, Generation]] = field(default_factory=list)
    paper_fills: int = 0
    shadow_fills: int = 0
    shadow_generations: int = 0
    removed: dict[str, set[str]] = field(default_factory=dict)
    holes: list[recommendations.LedgerHole] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """One line per generation whose LLM failed (the rules engine answered instead)."""
        return [f"{day} {g.account}: {g.llm_error}" for day, g in self.generations if g.llm_error]


def recommend_days(
    conn: psycopg.Connection,
    days: list[date],
    market: str,
    symbols: list[str],
    client: OpenAICompatibleClient | InProcessVLLM | None,
    retrieve: Retriever,
    window_start: datetime,
    calibrate: bool = False,
) -> DailyRun:
    """Decide and store every account's recommendation for each of ``days`` (in order; ``window_start``: the
    first day's start, from which the paper ledgers are replayed), filling the ledgers as it goes. Every decision
    sees the record of what it follows (feedback.py); ``calibrate``: the rules engine's confidence acts on it."""
    run = DailyRun(days)
    if not days:
        return run
    run.removed = paper_fill_ids_after(conn, market, window_start)
    delete_paper_fills_after(conn, market, window_start)
    recommendations.clear_shadows(conn, market, days[0], days[-1], keep_days=client is not None)
    book = GuardBook.seed(conn, market, symbols, days[0])
    record = FeedbackBook.seed(conn, market, days[0])
    for day in days:
        run.paper_fills += fill_paper_accounts(conn, day - timedelta(days=1), market, symbols)
        account_contexts = inputs.contexts(conn, day, symbols, market, retrieve)
        book.attach(conn, account_contexts)  # each account's protections and history, as of the decision
        record.attach(conn, account_contexts, calibrate)  # what followed the last times, known by the decision
        day_generations = [(generate(c, client), c.decided_at) for c in account_contexts]
        recommendations.store_day(conn, day, day_generations)  # every account of the day, or none
        record.add_day(day, [g for g, _ in day_generations])
        if client is not None:  # the rules engine beside the LLM, on the same inputs, against its own ledger
            run.shadow_fills += fill_shadow_ledgers(conn, day - timedelta(days=1), market, symbols)
            shadows = shadow_generations(conn, account_contexts)
            recommendations.store_shadow_day(conn, day, shadows)
            run.shadow_generations += len(shadows)
        run.generations += [(day, generation) for generation, _ in day_generations]
    # The last day's fills too, when the next day's open already exists (a past window).
    run.paper_fills += fill_paper_accounts(conn, days[-1], market, symbols)
    if client is not None:
        run.shadow_fills += fill_shadow_ledgers(conn, days[-1], market, symbols)
    replayed = paper_fill_ids_after(conn, market, window_start)
    run.removed = {a: ids - replayed.get(a, set()) for a, ids in run.removed.items()}
    run.holes = recommendations.record_ledger_holes(conn, market, days[0], days[-1], run.removed)
    return run
