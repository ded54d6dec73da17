"""Which problems to announce: a problem (a failing check, a stale asset) is posted when it starts failing, not
on every evaluation while it keeps failing, and again only after it has passed in between. Pure, so the
sensor's memory (its cursor) is a plain JSON list of the problems already announced."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from fks_pipelines.lib.notify import escape


@dataclass(frozen=True)
class CheckOutcome:
    """The latest evaluation of one asset check (``asset`` as a UI path, e.g. raw/binance_klines)."""

    asset: str
    check: str
    passed: bool
    severity: str  # WARN or ERROR
    description: str = ""
    partition: str | None = None

    @property
    def key(self) -> str:
        return f"{self.asset}:{self.check}" + (f":{self.partition}" if self.partition else "")


def new_problems(announced: Iterable[str], outcomes: Iterable[CheckOutcome]) -> tuple[list[CheckOutcome], set[str]]:
    """(outcomes to post now, problems announced after this tick): a failing check already announced stays
    quiet; a check that passes leaves the set, so a later failure is posted again."""
    still = set(announced)
    fresh: list[CheckOutcome] = []
    for outcome in outcomes:
        if outcome.passed:
            still.discard(outcome.key)
        elif outcome.key not in still:
            fresh.append(outcome)
            still.add(outcome.key)
    return fresh, still


def asset_url(ui_url: str, asset: str) -> str:
    """The asset's checks tab in the Dagster UI."""
    return f"{ui_url.rstrip('/')}/assets/{quote(asset)}?view=checks"


def problem_message(outcome: CheckOutcome, ui_url: str) -> str:
    """One short line: what failed, how bad, where to look."""
    what = "stale" if "freshness" in outcome.check else "check failed"
    detail = f": {escape(outcome.description)[:200]}" if outcome.description else ""
    return (
        f"**fks {what}** ({outcome.severity}) `{outcome.asset}` · `{outcome.check}`"
        + (f" partition `{outcome.partition}`" if outcome.partition else "")
        + f"{detail}"
        f" <{asset_url(ui_url, outcome.asset)}>"
    )


def load_cursor(cursor: str | None) -> tuple[int, set[str]]:
    """(last event storage id seen, problems announced) from a sensor cursor."""
    if not cursor:
        return 0, set()
    data = json.loads(cursor)
    return int(data.get("after", 0)), set(data.get("announced", []))


def dump_cursor(after: int, announced: set[str]) -> str:
    return json.dumps({"after": after, "announced": sorted(announced)})
