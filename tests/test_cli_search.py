"""`fks search --kind`: the record's kinds (trade, position, recommendation) can be searched on their own."""

from __future__ import annotations

import click
import pytest

from fks_pipelines.cli.search import search


def test_the_record_kinds_are_search_filters():
    ctx = search.make_context("search", ["past calls", "--kind", "recommendation,position", "--kinds", "trade"])
    assert ctx.params["kinds"] == ["trade"]  # the last one given wins, as for any click option
    ctx = search.make_context("search", ["past calls", "--kind", "recommendation,position"])
    assert ctx.params["kinds"] == ["recommendation", "position"]
    with pytest.raises(click.BadParameter, match="'trades' is not one of"):
        search.make_context("search", ["q", "--kind", "trades"])
