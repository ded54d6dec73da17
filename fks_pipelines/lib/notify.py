"""Posting the day's recommendation to a Discord webhook as a readable message. Failures are reported to
the caller, never raised: a notification must not fail the recommendation.

Nothing in a post can ping anyone: every payload sets ``allowed_mentions`` to parse none, and every ``@`` is
followed by a zero-width space. Values from the data (account names, symbols...) are put on one line with
Discord's markdown characters escaped, so they show as written and cannot format the message."""

from __future__ import annotations

import re

import httpx

DISCORD_LIMIT = 2000  # characters per message
MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()])")


def escape(value: object) -> str:
    """A value from the data as plain text in a message: one line, markdown characters escaped."""
    return MARKDOWN.sub(r"\\\1", " ".join(str(value).split()))


def recommendation_message(day: str, rows: list[dict]) -> str:
    lines = [f"**fks daily recommendation — {day}**"]
    for account in sorted({r["account"] for r in rows}):
        mine = [r for r in rows if r["account"] == account]
        lines.append(f"\n__{escape(account)}__ (generator: {escape(mine[0]['generator'])})")
        for r in mine:
            stop = f", stop {r['stop_loss']:,.2f}" if r.get("stop_loss") else ""
            lines.append(
                f"• **{escape(r['action'].upper())} {escape(r['symbol'])}** → {r['target_allocation']:.1%} of equity"
                f" (now {r['current_allocation']:.1%}) at {r['reference_price']:,.2f}{stop};"
                f" confidence {r['confidence']:.0%}"
                + (f"; clamped: {', '.join(escape(c['rule']) for c in r['clamps'])}" if r.get("clamps") else "")
            )
    return _fit("\n".join(lines))


def _fit(text: str) -> str:
    return text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 20] + "\n… (truncated)"


def post_to_discord(webhook_url: str, content: str, timeout_s: float = 10.0) -> str | None:
    """None when posted; otherwise what went wrong. Mentions are neutralised whatever ``content`` holds."""
    payload = {"content": _fit(content.replace("@", "@\u200b")), "allowed_mentions": {"parse": []}}
    try:
        response = httpx.post(webhook_url, json=payload, timeout=timeout_s)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}"
    if response.status_code >= 300:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return None
