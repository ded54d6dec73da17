"""Discord posts through a real webhook server on 127.0.0.1: nothing in them can ping anyone or format the message."""

from __future__ import annotations

from fks_pipelines.lib.notify import post_to_discord, recommendation_message
from tests.support import Reply, ScriptedServer


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
