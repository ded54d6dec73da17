"""The portfolio ledger file: accounts with their opening cash and trades, from YAML (whole ledger) or CSV
(trades of accounts that exist). Everything is validated before anything is written: unknown symbols,
negative cash, duplicate trade ids, sells of more than is held, non-positive quantities or prices each
raise a BadInputError naming the file and the account/row.

Limits, checked before anything is written: the file's size (checked before it is parsed), at most
MAX_ACCOUNTS accounts and MAX_TRADES trades per file, amounts up to MAX_AMOUNT with 8 decimal places (the
ledger tables' precision), no time in the future, and account names of 1 to 64 characters among ASCII
letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit (they reach Discord posts and logs),
unique ignoring case. Trade ids starting with ``paper-`` (any case) are refused: they are the platform's paper
fills, which a re-run replaces. CSV files may start with a UTF-8 byte-order mark (as Excel writes them).

YAML::

    accounts:
      - name: demo
        kind: personal            # personal | prop_firm | long_term
        mode: real                # real (imported trades only) | paper (fills its own recommendations)
        cash: 10000               # opening deposit, USDT
        cash_at: 2024-01-01T00:00:00Z
        protections: {max_drawdown: 0.2, cooldown_days: 2}   # optional: overrides of the tier's defaults
        # prop_firm: {daily_loss_limit: 0.05, max_drawdown: 0.10, drawdown: static, profit_target: 0.10}
        #                           # optional, kind prop_firm only: the firm's rules (lib/portfolio/guards.py)
        trades:
          - {id: t1, symbol: BTCUSDT, side: buy, quantity: 0.01, price: 60000, fee: 0.6, at: 2024-05-01T10:00:00Z}

CSV columns: account, trade_id, symbol, side, quantity, price, fee, executed_at.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

# PyYAML ships no type hints, and its stubs (types-PyYAML) are not among the dependencies.
import yaml  # type: ignore[import-untyped,unused-ignore]  # (mypy's incremental cache may see it typed)

from fks_pipelines.lib.db.portfolio import PAPER_PREFIX, Account, Trade, check_account
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.portfolio.guards import prop_rules_from, protections_from

KINDS = ("personal", "prop_firm", "long_term")
MODES = ("real", "paper")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BYTES = 10_000_000  # the default of FKS_PORTFOLIO_MAX_BYTES
MAX_ACCOUNTS = 1_000
MAX_TRADES = 100_000
MAX_AMOUNT = Decimal(10) ** 15  # cash, quantity, price, fee (the tables hold numeric(38, 8))
PLACES = Decimal("1e-8")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1 to 64 characters among ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"


def _show(value) -> str:
    """A value for a one-line message: its repr, shortened."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _decimal(value, what: str, where: str) -> Decimal:
    """A finite amount up to MAX_AMOUNT with at most the ledger's 8 decimal places."""
    try:
        out = Decimal(str(value)) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    except (InvalidOperation, ValueError):
        out = None
    if out is None:
        raise BadInputError(f"{what} {_show(value)} is not a number", where=where)
    if not out.is_finite():
        raise BadInputError(f"{what} {_show(value)} is not finite", where=where)
    if abs(out) > MAX_AMOUNT:
        raise BadInputError(f"{what} {_show(value)} is too large (at most {MAX_AMOUNT:,.0f})", where=where)
    if out != out.quantize(PLACES):
        raise BadInputError(
            f"{what} {_show(value)} has more than 8 decimal places (the ledger's precision)", where=where
        )
    return out


def _time(value, what: str, where: str) -> datetime:
    """An ISO time (UTC when it has no offset), not in the future."""
    if isinstance(value, datetime):
        out = value
    else:
        try:
            out = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise BadInputError(f"{what} {_show(value)} is not an ISO time", where=where) from None
    out = out if out.tzinfo else out.replace(tzinfo=UTC)
    if out > datetime.now(UTC):
        raise BadInputError(f"{what} {out.isoformat()} is in the future", where=where)
    return out


def _name(raw: dict, where: str) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise BadInputError(f"name {_show(name)} must be text of {NAME_RULE}", where=where)
    return name


def _trade(raw: dict, where: str, symbols: set[str]) -> Trade:
    if not isinstance(raw, dict):
        raise BadInputError(f"a trade must be a mapping, not {type(raw).__name__}", where=where)
    missing = [k for k in ("id", "symbol", "side", "quantity", "price", "at") if raw.get(k) in (None, "")]
    if missing:
        raise BadInputError(f"trade is missing {', '.join(missing)}", where=where)
    symbol = str(raw["symbol"]).upper()
    if symbol not in symbols:
        raise BadInputError(
            f"unknown symbol {_show(symbol)} (the platform follows {', '.join(sorted(symbols))})", where=where
        )
    side = str(raw["side"]).lower()
    if side not in ("buy", "sell"):
        raise BadInputError(f"side must be buy or sell, not {_show(raw['side'])}", where=where)
    quantity, price = _decimal(raw["quantity"], "quantity", where), _decimal(raw["price"], "price", where)
    fee = _decimal(raw.get("fee") or 0, "fee", where)
    if quantity <= 0 or price <= 0 or fee < 0:
        raise BadInputError("quantity and price must be positive, fee not negative", where=where)
    trade_id = str(raw["id"])
    if trade_id.lower().startswith(PAPER_PREFIX):
        raise BadInputError(
            f"trade id {_show(trade_id)}: ids starting with {PAPER_PREFIX!r} are reserved for paper fills",
            where=where,
        )
    return Trade(trade_id, symbol, side, quantity, price, fee, _time(raw["at"], "time", where))


def _account(raw, here: str, symbols: set[str]) -> Account:
    if not isinstance(raw, dict):
        raise BadInputError(f"an account must be a mapping, not {type(raw).__name__}", where=here)
    name = _name(raw, here)
    here = f"{here} ({name})"
    kind = raw.get("kind", "personal")
    if kind not in KINDS:
        raise BadInputError(f"kind must be one of {', '.join(KINDS)}, not {_show(kind)}", where=here)
    mode = raw.get("mode", "real")
    if mode not in MODES:
        raise BadInputError(f"mode must be one of {', '.join(MODES)}, not {_show(mode)}", where=here)
    cash = _decimal(raw.get("cash", 0), "cash", here)
    if cash < 0:
        raise BadInputError(f"negative cash {raw.get('cash')}", where=here)
    raw_trades = raw.get("trades") or []
    if not isinstance(raw_trades, list):
        raise BadInputError(f"trades must be a list, not {type(raw_trades).__name__}", where=here)
    trades = [_trade(t, f"{here} trade {j}", symbols) for j, t in enumerate(raw_trades, start=1)]
    protections, prop_firm = raw.get("protections"), raw.get("prop_firm")
    protections_from(protections, "medium", where=here)  # checked against any tier: the keys and ranges are shared
    prop_rules_from(prop_firm, where=here)
    if prop_firm is not None and kind != "prop_firm":
        raise BadInputError(f"prop_firm rules need kind: prop_firm, not {_show(kind)}", where=here)
    at = _time(raw.get("cash_at") or EPOCH, "cash_at", here)
    account = Account(name, kind, cash, at, trades, mode, protections or None, prop_firm)
    check_account(account, here)
    return account


def _read_yaml(path: Path, where: str, symbols: set[str]) -> list[Account]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
        raise BadInputError(f"not valid YAML: {' '.join(str(e).split())}", where=where) from None
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), list) or not data["accounts"]:
        raise BadInputError("expected a mapping with a non-empty 'accounts' list", where=where)
    if len(data["accounts"]) > MAX_ACCOUNTS:
        raise BadInputError(f"{len(data['accounts'])} accounts: at most {MAX_ACCOUNTS:,} per file", where=where)
    trades = sum(
        len(a["trades"]) for a in data["accounts"] if isinstance(a, dict) and isinstance(a.get("trades"), list)
    )
    if trades > MAX_TRADES:
        raise BadInputError(f"{trades:,} trades: at most {MAX_TRADES:,} per file", where=where)
    accounts, names = [], set()
    for i, raw in enumerate(data["accounts"], start=1):
        account = _account(raw, f"{where}: account {i}", symbols)
        if account.name.lower() in names:  # names differing only by case would be one account to a reader
            raise BadInputError(
                f"duplicate account {account.name!r} (names are compared ignoring case)",
                where=f"{where}: account {i} ({account.name})",
            )
        names.add(account.name.lower())
        accounts.append(account)
    return accounts


def _read_csv(path: Path, where: str, symbols: set[str], existing: set[str]) -> dict[str, list[Trade]]:
    out: dict[str, list[Trade]] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel's byte-order mark is not a column
            reader = csv.DictReader(f)
            expected = {"account", "trade_id", "symbol", "side", "quantity", "price", "fee", "executed_at"}
            if not reader.fieldnames or not expected <= set(reader.fieldnames):
                raise BadInputError(f"CSV needs columns {', '.join(sorted(expected))}", where=where)
            for row_number, row in enumerate(reader, start=1):
                if row_number > MAX_TRADES:
                    raise BadInputError(f"more than {MAX_TRADES:,} trades per file", where=where, row=row_number)
                if row["account"] not in existing:
                    raise BadInputError(
                        f"unknown account {_show(row['account'])} (import it from YAML first)",
                        where=where,
                        row=row_number,
                    )
                trade = _trade(
                    {
                        "id": row["trade_id"],
                        "symbol": row["symbol"],
                        "side": row["side"],
                        "quantity": row["quantity"],
                        "price": row["price"],
                        "fee": row["fee"],
                        "at": row["executed_at"],
                    },
                    f"{where}, row {row_number}",
                    symbols,
                )
                out.setdefault(row["account"], []).append(trade)
    except (csv.Error, UnicodeDecodeError) as e:
        raise BadInputError(f"not valid CSV: {' '.join(str(e).split())}", where=where) from None
    return out


def read_ledger(
    path: Path, symbols: set[str], existing: set[str] | None = None, max_bytes: int = MAX_BYTES
) -> list[Account] | dict[str, list[Trade]]:
    """YAML: the accounts it defines. CSV: trades per account (accounts must be in ``existing``). Files
    above ``max_bytes`` are refused before they are read."""
    where = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".csv"):
        raise BadInputError("expected a .yaml, .yml or .csv file", where=where)
    size = path.stat().st_size
    if size > max_bytes:
        raise BadInputError(
            f"the file has {size:,} bytes: at most {max_bytes:,} (FKS_PORTFOLIO_MAX_BYTES)", where=where
        )
    if suffix == ".csv":
        return _read_csv(path, where, symbols, existing or set())
    return _read_yaml(path, where, symbols)
