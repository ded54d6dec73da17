"""Notifications, in one place: what the platform tells people (the day's recommendation, a failed run, a check
that starts failing) and the Discord webhook that carries it. Pure apart from the HTTP post; the Dagster side is
``defs.shared.NotifierResource``, which the assets and sensors use.

Posting failures are reported to the caller, never raised: a notification must not fail the recommendation or a
sensor tick.

Nothing in a post can ping anyone: every payload sets ``allowed_mentions`` to parse none, and every ``@`` is
followed by a zero-width space. Values from the data (account names, symbols...) are put on one line with
Discord's markdown characters escaped, so they show as written and cannot format the message.

A problem (a failing check, a stale asset) is announced when it starts failing, not on every evaluation while it
keeps failing, and again only after it has passed in between (``new_problems``); the announcing sensor's memory
(its cursor) is a plain JSON list of the problems already announced."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

DISCORD_LIMIT = 2000  # characters per message
# Discord's webhook API: at most 10 files per message, and (without a boosted server) 10 MiB per request.
DISCORD_MAX_FILES = 10
DISCORD_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()])")


# -- messages --------------------------------------------------------------------------------------------------------


def escape(value: object) -> str:
    """A value from the data as plain text in a message: one line, markdown characters escaped."""
    return MARKDOWN.sub(r"\\\1", " ".join(str(value).split()))


def recommendation_message(day: str, rows: list[dict], guards: Sequence[dict] = ()) -> str:
    """The day's recommendation per account: action, target and current allocation, price, stop, confidence and
    the clamps the sizing applied; then each act of the account's protections that day (recommendations.guards)."""
    lines = [f"**fks daily recommendation — {day}**"]
    for account in sorted({r["account"] for r in rows}):
        mine = [r for r in rows if r["account"] == account]
        lines.append(f"\n__{escape(account)}__ (generator: {escape(mine[0]['generator'])})")
        for a in (g for g in guards if g["account"] == account):
            what = f" {escape(a['symbol'])}" if a.get("symbol") else ""
            lines.append(f"• guard **{escape(a['guard'])}**{what}: {escape(a['reason'])}")
        for r in mine:
            stop = f", stop {r['stop_loss']:,.2f}" if r.get("stop_loss") else ""
            lines.append(
                f"• **{escape(r['action'].upper())} {escape(r['symbol'])}** → {r['target_allocation']:.1%} of equity"
                f" (now {r['current_allocation']:.1%}) at {r['reference_price']:,.2f}{stop};"
                f" confidence {r['confidence']:.0%}"
                + (f"; clamped: {', '.join(escape(c['rule']) for c in r['clamps'])}" if r.get("clamps") else "")
            )
    return fit("\n".join(lines))


def run_failure_message(job_name: str, run_id: str, reason: str | None) -> str:
    """A failed run (one past its max runtime too: run monitoring marks it failed): the job, the run, why."""
    return f"**fks run failed**: `{job_name}` run `{run_id[:8]}`: {reason or 'see the Dagster UI'}"


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


def fit(text: str) -> str:
    """``text`` within Discord's message limit, marked when cut."""
    return text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 20] + "\n… (truncated)"


# -- which problems to announce --------------------------------------------------------------------------------------


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


def load_cursor(cursor: str | None) -> tuple[int, set[str]]:
    """(last event storage id seen, problems announced) from a sensor cursor."""
    if not cursor:
        return 0, set()
    data = json.loads(cursor)
    return int(data.get("after", 0)), set(data.get("announced", []))


def dump_cursor(after: int, announced: set[str]) -> str:
    return json.dumps({"after": after, "announced": sorted(announced)})


# -- the Discord webhook ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """A file posted with a message (a PNG shows inline under it)."""

    filename: str
    content: bytes
    content_type: str = "image/png"
    description: str = ""


def discord_payload(content: str, files: Sequence[Attachment] = ()) -> dict:
    """The webhook's JSON body: the message within the limit, mentions neutralised whatever ``content`` holds,
    and one ``attachments`` entry per file (its ``id`` is the n of the ``files[n]`` part that carries it)."""
    payload: dict = {"content": fit(content.replace("@", "@\u200b")), "allowed_mentions": {"parse": []}}
    if files:
        payload["attachments"] = [
            {"id": n, "filename": f.filename} | ({"description": f.description[:1024]} if f.description else {})
            for n, f in enumerate(files)
        ]
    return payload


def post_to_discord(
    webhook_url: str, content: str, files: Sequence[Attachment] = (), timeout_s: float = 10.0
) -> str | None:
    """None when posted; otherwise what went wrong. Without files the body is JSON; with files it is
    multipart/form-data as Discord's webhook API asks: the JSON as ``payload_json``, each file as ``files[n]``."""
    if len(files) > DISCORD_MAX_FILES:
        return f"{len(files)} files: a Discord message holds at most {DISCORD_MAX_FILES}"
    size = sum(len(f.content) for f in files)
    if size > DISCORD_MAX_UPLOAD_BYTES:
        return f"{size:,} bytes of files: a Discord webhook takes at most {DISCORD_MAX_UPLOAD_BYTES:,}"
    payload = discord_payload(content, files)
    try:
        if files:
            response = httpx.post(
                webhook_url,
                data={"payload_json": json.dumps(payload)},
                files=[(f"files[{n}]", (f.filename, f.content, f.content_type)) for n, f in enumerate(files)],
                timeout=timeout_s,
            )
        else:
            response = httpx.post(webhook_url, json=payload, timeout=timeout_s)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}"
    if response.status_code >= 300:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return None
