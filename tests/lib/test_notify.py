"""Discord posts through a real webhook server on 127.0.0.1: nothing in them can ping anyone or format the message."""

from __future__ import annotations

import json

from fks_pipelines.lib.notify import Attachment, post_to_discord, recommendation_message
from tests.support import Reply, ScriptedServer, form_parts


def test_mentions_and_markdown_from_the_data_are_neutralised():
    row = {
        "account": "@everyone\n**free money** <@&123>",
        "symbol": "BTCUSDT",
        "generator": "llm",
        "action": "buy",
        "target_allocation": 0.1,
        "current_allocation": 0.0,
        "reference_price": 60_000.0,
        "stop_loss": 58_000.0,
        "confidence": 0.6,
        "clamps": [{"rule": "tier medium: at most 20% per position"}],
    }
    with ScriptedServer(lambda request: Reply(204)) as hook:
        assert post_to_discord(hook.url + "/webhook", recommendation_message("2024-05-20", [row])) is None
        assert post_to_discord(hook.url + "/webhook", "run failed for @here") is None  # every post, not only ours
        first, second = (r.json() for r in hook.requests)
    assert first["allowed_mentions"] == {"parse": []} and second["allowed_mentions"] == {"parse": []}
    content = first["content"]
    assert "@everyone" not in content and "@\u200beveryone" in content and "<@\u200b&123" in content
    assert "\\*\\*free money\\*\\*" in content and "\n**free money**" not in content  # one line, shown as written
    assert "@here" not in second["content"]


def test_pictures_go_as_files_beside_the_json_payload():
    """Discord's webhook API for files: multipart/form-data, the message as ``payload_json`` (with an
    ``attachments`` entry per file whose id is the n of its ``files[n]`` part), each file as ``files[n]``."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # binary, with CR/LF and NUL inside
    pictures = [
        Attachment("equity.png", png, description="equity of @everyone's account"),
        Attachment("drawdown.png", png[::-1]),
    ]
    with ScriptedServer(lambda request: Reply(200, b"{}")) as hook:
        assert post_to_discord(hook.url + "/webhook", "the day @here", pictures) is None
        (request,) = hook.requests
    parts = form_parts(request)
    assert set(parts) == {"payload_json", "files[0]", "files[1]"}
    payload = json.loads(parts["payload_json"][2])
    assert payload["content"] == "the day @\u200bhere" and payload["allowed_mentions"] == {"parse": []}
    assert payload["attachments"] == [
        {"id": 0, "filename": "equity.png", "description": "equity of @everyone's account"},
        {"id": 1, "filename": "drawdown.png"},
    ]
    assert parts["files[0]"] == ("equity.png", "image/png", png)
    assert parts["files[1]"] == ("drawdown.png", "image/png", png[::-1])


def test_too_many_files_are_refused_before_posting():
    with ScriptedServer(lambda request: Reply(204)) as hook:
        problem = post_to_discord(hook.url, "x", [Attachment(f"{n}.png", b"x") for n in range(11)])
        assert problem is not None and "at most 10" in problem and hook.requests == []


def test_the_recommendation_post_lists_each_guard_that_acted_under_its_account():
    from fks_pipelines.lib.notify import recommendation_message

    row = {
        "account": "acct",
        "generator": "rules",
        "action": "hold",
        "symbol": "BTCUSDT",
        "target_allocation": 0.0,
        "current_allocation": 0.0,
        "reference_price": 60_000.0,
        "stop_loss": None,
        "confidence": 0.6,
        "clamps": [],
    }
    act = {"account": "acct", "guard": "max_drawdown", "symbol": None, "reason": "equity 26% below its peak"}
    other = {**act, "account": "someone_else"}
    text = recommendation_message("2024-05-01", [row], [act, other])
    assert "guard **max\\_drawdown**: equity 26% below its peak" in text and text.count("guard **") == 1
    assert "guard" not in recommendation_message("2024-05-01", [row])


def test_status_reports_the_guards_of_the_last_decision_day():
    from datetime import UTC, date, datetime

    from fks_pipelines.lib.metrics import PlatformSnapshot, status_rows

    snap = PlatformSnapshot(taken_at=datetime.now(UTC), database_ok=True, guard_day=date(2024, 5, 1))
    snap.guard_acts = [{"account": "a", "guard": "cooldown", "symbol": "BTCUSDT"}]
    (row,) = [r for r in status_rows(snap) if r.item == "guards"]
    assert "1 act(s) on 2024-05-01: a cooldown BTCUSDT" in row.detail and row.values["acts"] == 1
    assert not [
        r for r in status_rows(PlatformSnapshot(taken_at=datetime.now(UTC), database_ok=True)) if r.item == "guards"
    ]
