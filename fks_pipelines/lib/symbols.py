"""The one symbol rule, used everywhere a symbol enters the platform: FKS_SYMBOLS, ``--symbols``, run config,
every source and the loader. Kept free of heavy imports so settings can use it."""

from __future__ import annotations

import re

from fks_pipelines.lib.errors import BadInputError

# Binance's symbol rule: 2-20 upper-case letters and digits; COIN-M contracts add a _PERP or _YYMMDD suffix
# (BTCUSD_PERP), still 20 characters at most. Anything else (quotes, spaces, SQL, paths) is not a symbol.
SYMBOL_RULE = re.compile(r"^(?=.{2,20}$)[A-Z0-9]{2,20}(?:_(?:PERP|[0-9]{6}))?$")


def check_symbol(symbol: object, *, where: str) -> str:
    """Return ``symbol`` if it follows SYMBOL_RULE, else raise BadInputError naming the value and ``where``."""
    if not isinstance(symbol, str) or not SYMBOL_RULE.match(symbol):
        raise BadInputError(
            f"invalid symbol {symbol!r}: Binance symbols are 2-20 upper-case letters and digits "
            "(COIN-M: with a _PERP or _YYMMDD suffix), e.g. BTCUSDT",
            where=where,
        )
    return symbol
