"""The portfolio ledger file: accounts with their opening cash and trades, from YAML (whole ledger) or CSV
(trades of accounts that exist). Everything is validated before anything is written: unknown symbols,
negative cash, duplicate trade ids, sells of more than is held, non-positive quantities or prices each
raise a BadInputError naming the file and the account/row.

YAML::

    accounts:
      - name: demo
        kind: personal            # personal | prop_firm | long_term
        cash: 10000               # opening deposit, USDT
        cash_at: 2024-01-01T00:00:00Z
        trades:
          - {id: t1, symbol: BTCUSDT, side: buy, quantity: 0.01, price: 60000, fee: 0.6, at: 2024-05-01T10:00:00Z}

CSV columns: account, trade_id, symbol, side, quantity, price, fee, executed_at.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from fks_pipelines.lib.errors import BadInputError

KINDS = ("personal", "prop_firm", "long_term")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Trade:
    trade_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    executed_at: datetime


@dataclass
class Account:
    name: str
    kind: str
    cash: Decimal
    cash_at: datetime
    trades: list[Trade] = field(default_factory=list)


def _decimal(value, what: str, where: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BadInputError(f"{what} {value!r} is not a number", where=where) from None
    if not out.is_finite():
        raise BadInputError(f"{what} {value!r} is not finite", where=where)
    return out


def _time(value, what: str, where: str) -> datetime:
    if isinstance(value, datetime):
        out = value
    else:
        try:
            out = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise BadInputError(f"{what} {value!r} is not an ISO time", where=where) from None
    return out if out.tzinfo else out.replace(tzinfo=timezone.utc)


def _trade(raw: dict, where: str, symbols: set[str]) -> Trade:
    missing = [k for k in ("id", "symbol", "side", "quantity", "price", "at") if raw.get(k) in (None, "")]
    if missing:
        raise BadInputError(f"trade is missing {', '.join(missing)}", where=where)
    symbol = str(raw["symbol"]).upper()
    if symbol not in symbols:
        raise BadInputError(f"unknown symbol {symbol!r} (the platform follows {', '.join(sorted(symbols))})", where=where)
    side = str(raw["side"]).lower()
    if side not in ("buy", "sell"):
        raise BadInputError(f"side must be buy or sell, not {raw['side']!r}", where=where)
    quantity, price = _decimal(raw["quantity"], "quantity", where), _decimal(raw["price"], "price", where)
    fee = _decimal(raw.get("fee") or 0, "fee", where)
    if quantity <= 0 or price <= 0 or fee < 0:
        raise BadInputError("quantity and price must be positive, fee not negative", where=where)
    return Trade(str(raw["id"]), symbol, side, quantity, price, fee, _time(raw["at"], "time", where))


def check_account(account: Account, where: str) -> None:
    """Ids unique; never sells more than it holds; cash never below zero along the way."""
    seen: set[str] = set()
    held: dict[str, Decimal] = {}
    cash = account.cash
    for trade in sorted(account.trades, key=lambda t: (t.executed_at, t.trade_id)):
        if trade.trade_id in seen:
            raise BadInputError(f"duplicate trade id {trade.trade_id!r}", where=where)
        seen.add(trade.trade_id)
        if trade.executed_at < account.cash_at:
            raise BadInputError(f"trade {trade.trade_id} at {trade.executed_at:%Y-%m-%d %H:%M} precedes the account's cash ({account.cash_at:%Y-%m-%d})", where=where)
        sign = 1 if trade.side == "buy" else -1
        held[trade.symbol] = held.get(trade.symbol, Decimal(0)) + sign * trade.quantity
        cash -= sign * trade.quantity * trade.price + trade.fee
        if held[trade.symbol] < 0:
            raise BadInputError(f"trade {trade.trade_id} sells more {trade.symbol} than the account holds (spot: no shorts)", where=where)
        if cash < 0:
            raise BadInputError(f"trade {trade.trade_id} spends more cash than the account has ({cash:.2f} after it)", where=where)


def read_ledger(path: Path, symbols: set[str], existing: set[str] | None = None) -> list[Account] | dict[str, list[Trade]]:
    """YAML: the accounts it defines. CSV: trades per account (accounts must be in ``existing``)."""
    where = str(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise BadInputError(f"not valid YAML: {e}", where=where) from None
        if not isinstance(data, dict) or not isinstance(data.get("accounts"), list) or not data["accounts"]:
            raise BadInputError("expected a mapping with a non-empty 'accounts' list", where=where)
        accounts, names = [], set()
        for i, raw in enumerate(data["accounts"], start=1):
            here = f"{where}: account {i}" + (f" ({raw.get('name')})" if isinstance(raw, dict) and raw.get("name") else "")
            if not isinstance(raw, dict) or not raw.get("name"):
                raise BadInputError("account needs a name", where=here)
            if raw["name"] in names:
                raise BadInputError(f"duplicate account {raw['name']!r}", where=here)
            names.add(raw["name"])
            kind = raw.get("kind", "personal")
            if kind not in KINDS:
                raise BadInputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}", where=here)
            cash = _decimal(raw.get("cash", 0), "cash", here)
            if cash < 0:
                raise BadInputError(f"negative cash {cash}", where=here)
            trades = [_trade(t, f"{here} trade {j}", symbols) for j, t in enumerate(raw.get("trades") or [], start=1)]
            account = Account(str(raw["name"]), kind, cash, _time(raw.get("cash_at") or EPOCH, "cash_at", here), trades)
            check_account(account, here)
            accounts.append(account)
        return accounts
    if path.suffix.lower() == ".csv":
        out: dict[str, list[Trade]] = {}
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            expected = {"account", "trade_id", "symbol", "side", "quantity", "price", "fee", "executed_at"}
            if not reader.fieldnames or not expected <= set(reader.fieldnames):
                raise BadInputError(f"CSV needs columns {', '.join(sorted(expected))}", where=where)
            for row_number, row in enumerate(reader, start=1):
                if row["account"] not in (existing or set()):
                    raise BadInputError(f"unknown account {row['account']!r} (import it from YAML first)", where=where, row=row_number)
                trade = _trade({"id": row["trade_id"], "symbol": row["symbol"], "side": row["side"], "quantity": row["quantity"],
                                "price": row["price"], "fee": row["fee"], "at": row["executed_at"]}, f"{where}, row {row_number}", symbols)  # fmt: skip
                out.setdefault(row["account"], []).append(trade)
        return out
    raise BadInputError("expected a .yaml, .yml or .csv file", where=where)
