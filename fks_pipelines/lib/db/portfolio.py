"""The ``portfolio`` schema's store: the ledger in PostgreSQL (accounts, deposits, trades), importing it (all or
nothing), and an account's state at a point in time.

The ledger's records (:class:`Account`, :class:`Trade`) and the rule every stored history keeps
(:func:`check_account`: unique ids, no sell of more than is held, cash never below zero) live here, beside the
tables they describe; the ledger file reader (``lib/portfolio/ledger.py``) builds them and the store re-checks
them against what it holds before writing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from fks_pipelines.lib.db import marts
from fks_pipelines.lib.db.connect import one_row
from fks_pipelines.lib.errors import BadInputError, FksError

# Trade ids the platform writes for paper accounts (paper-<decision day>-<symbol>): reserved, so a re-run that
# replaces its own fills can never delete a trade a user imported. Refused in any case (Paper-, PAPER-) on import.
PAPER_PREFIX = "paper-"


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
    mode: str = "real"  # paper: the platform fills the account's own recommendations (lib/portfolio/paper.py)
    # Overrides of the capital tier's protections, and a prop firm's rules (lib/portfolio/guards.py).
    protections: dict | None = None
    prop_firm: dict | None = None


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
            raise BadInputError(
                f"trade {trade.trade_id} at {trade.executed_at:%Y-%m-%d %H:%M} "
                f"precedes the account's cash ({account.cash_at:%Y-%m-%d})",
                where=where,
            )
        sign = 1 if trade.side == "buy" else -1
        held[trade.symbol] = held.get(trade.symbol, Decimal(0)) + sign * trade.quantity
        cash -= sign * trade.quantity * trade.price + trade.fee
        if held[trade.symbol] < 0:
            raise BadInputError(
                f"trade {trade.trade_id} sells more {trade.symbol} than the account holds (spot: no shorts)",
                where=where,
            )
        if cash < 0:
            raise BadInputError(
                f"trade {trade.trade_id} spends more cash than the account has ({cash:.2f} after it)", where=where
            )


@dataclass(frozen=True)
class Replacement:
    """What importing one account of a YAML file does to what the ledger holds: the file's account replaces the
    held one (kind, mode, opening cash, imported trades); the paper fills stay unless reset (or the account stops
    being paper). ``deleted_*`` is what the file does not contain: it is asked for before anything is written."""

    account: str
    new: bool
    cash_before: Decimal | None
    cash_after: Decimal
    trades_before: int  # imported trades held
    trades_after: int
    deleted_trades: tuple[str, ...]  # ids held but not in the file, or in it with other values
    paper_fills: int  # held
    deleted_paper_fills: int

    def loses(self) -> bool:
        return bool(self.deleted_trades or self.deleted_paper_fills)

    def describe(self) -> str:
        if self.new:
            return f"{self.account}: new account, opening cash {self.cash_after:,.2f}, {self.trades_after} trade(s)"
        cash = f"{self.cash_before or 0:,.2f}" + (
            "" if self.cash_before == self.cash_after else f" -> {self.cash_after:,.2f}"
        )
        parts = [f"opening cash {cash}", f"trades {self.trades_before} -> {self.trades_after}"]
        if self.deleted_trades:
            shown = ", ".join(self.deleted_trades[:5]) + (", ..." if len(self.deleted_trades) > 5 else "")
            parts.append(f"deletes {len(self.deleted_trades)} trade(s) the file does not hold as they are ({shown})")
        kept = self.paper_fills - self.deleted_paper_fills
        if self.deleted_paper_fills:
            parts.append(f"deletes {self.deleted_paper_fills} paper fill(s)")
        if kept:
            parts.append(f"keeps {kept} paper fill(s)")
        return f"{self.account}: replaces the account ({'; '.join(parts)})"


def plan_import(conn: psycopg.Connection, accounts: list[Account], reset_paper: bool = False) -> list[Replacement]:
    """What :func:`import_accounts` would replace, keep and delete (nothing is written). A file whose trades no
    longer fit the paper fills kept (a sell of more than is then held, cash below zero) is a BadInputError."""
    held_names = {name.lower(): name for (name,) in conn.execute("SELECT account FROM portfolio.accounts").fetchall()}
    plan = []
    for a in accounts:
        other = held_names.get(a.name.lower())
        if other is not None and other != a.name:
            raise BadInputError(f"account {a.name!r} differs from the existing {other!r} only by case")
        row = conn.execute(
            "SELECT a.mode, (SELECT sum(amount) FROM portfolio.deposits d WHERE d.account = a.account)"
            " FROM portfolio.accounts a WHERE a.account = %s",
            (a.name,),
        ).fetchone()
        if row is None:
            plan.append(Replacement(a.name, True, None, a.cash, 0, len(a.trades), (), 0, 0))
            continue
        mode, cash_before = row
        held = trade_history(conn, a.name)
        paper = [t for t in held if mode == "paper" and t.trade_id.startswith(PAPER_PREFIX)]
        imported = [t for t in held if t not in paper]
        in_file = set(a.trades)
        deleted = tuple(t.trade_id for t in imported if t not in in_file)
        drop_paper = reset_paper or a.mode != "paper"
        if paper and not drop_paper:
            check_account(
                Account(a.name, a.kind, a.cash, a.cash_at, [*a.trades, *paper], a.mode),
                f"account {a.name} with its {len(paper)} paper fill(s) kept (--reset-paper drops them)",
            )
        plan.append(
            Replacement(
                a.name,
                False,
                cash_before,
                a.cash,
                len(imported),
                len(a.trades),
                deleted,
                len(paper),
                len(paper) if drop_paper else 0,
            )
        )
    return plan


def import_accounts(
    conn: psycopg.Connection,
    accounts: list[Account],
    market: str,
    reset_paper: bool = False,
    confirmed: list[Replacement] | None = None,
) -> int:
    """Replace each account in the file (kind, mode, opening cash and imported trades) in one transaction,
    keeping its paper fills unless ``reset_paper``; returns trades written. ``confirmed``: the plan a person
    agreed to; if the ledger changed since (another import), nothing is written."""
    n = 0
    with conn.transaction():
        conn.execute("LOCK TABLE portfolio.accounts, portfolio.trades IN SHARE ROW EXCLUSIVE MODE")
        plan = plan_import(conn, accounts, reset_paper)
        if confirmed is not None and plan != confirmed:
            raise FksError(
                "the ledger changed while the import waited for confirmation: nothing was written; run it again"
            )
        for a, step in zip(accounts, plan, strict=True):
            if step.new:
                conn.execute(
                    "INSERT INTO portfolio.accounts (account, kind, market, mode, protections, prop_firm)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (a.name, a.kind, market, a.mode, _jsonb(a.protections), _jsonb(a.prop_firm)),
                )
            else:
                conn.execute(
                    "UPDATE portfolio.accounts SET kind = %s, market = %s, mode = %s, protections = %s,"
                    " prop_firm = %s, imported_at = now() WHERE account = %s",
                    (a.kind, market, a.mode, _jsonb(a.protections), _jsonb(a.prop_firm), a.name),
                )
                conn.execute("DELETE FROM portfolio.deposits WHERE account = %s", (a.name,))
                if step.deleted_paper_fills or not step.paper_fills:
                    conn.execute("DELETE FROM portfolio.trades WHERE account = %s", (a.name,))
                else:  # the platform's paper fills stay; only the imported trades are replaced
                    conn.execute(
                        "DELETE FROM portfolio.trades WHERE account = %s AND trade_id NOT LIKE %s",
                        (a.name, f"{PAPER_PREFIX}%"),
                    )
            conn.execute(
                "INSERT INTO portfolio.deposits (account, at, amount, note) VALUES (%s, %s, %s, 'opening cash')",
                (a.name, a.cash_at, a.cash),
            )
            n += _insert_trades(conn, a.name, a.trades)
    return n


def import_trades(conn: psycopg.Connection, trades: dict[str, list[Trade]], where: str) -> int:
    """Add trades to existing accounts (a CSV), re-checking each account's whole history first."""
    with conn.transaction():
        for account, new in trades.items():
            row = conn.execute(
                "SELECT a.kind, coalesce(sum(d.amount), 0), coalesce(min(d.at), now()) FROM portfolio.accounts a"
                " LEFT JOIN portfolio.deposits d USING (account) WHERE a.account = %s GROUP BY a.kind",
                (account,),
            ).fetchone()
            if row is None:
                raise BadInputError(f"unknown account {account!r}", where=where)
            kind, cash, cash_at = row
            existing = [
                Trade(*row)
                for row in conn.execute(
                    "SELECT trade_id, symbol, side, quantity, price, fee, executed_at"
                    " FROM portfolio.trades WHERE account = %s",
                    (account,),
                ).fetchall()
            ]
            check_account(Account(account, kind, cash, cash_at, existing + new), f"{where}: account {account}")
        return sum(_insert_trades(conn, account, new) for account, new in trades.items())


def _insert_trades(conn: psycopg.Connection, account: str, trades: list[Trade]) -> int:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO portfolio.trades (trade_id, account, symbol, side, quantity, price, fee, executed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(t.trade_id, account, t.symbol, t.side, t.quantity, t.price, t.fee, t.executed_at) for t in trades],
        )
    return len(trades)


@dataclass(frozen=True)
class AccountState:
    account: str
    kind: str
    market: str
    cash: float
    positions: dict[str, float]  # quantity per symbol
    net_deposits: float
    mode: str = "real"  # real | paper
    protections: dict | None = None  # overrides of the tier's protections (lib/portfolio/guards.py)
    prop_firm: dict | None = None  # a prop firm's rules


def account_states(conn: psycopg.Connection, at: datetime) -> list[AccountState]:
    """Every account open at ``at`` (its opening deposit is at or before it) as of ``at``: deposits and trades up
    to then, nothing later. An account opened later does not exist yet for a decision at ``at``: no recommendation
    is made for it, so a history backfill starts each account's ledger on its own first day."""
    out = []
    for account, kind, market, mode, protections, prop_firm in conn.execute(
        "SELECT a.account, a.kind, a.market, a.mode, a.protections, a.prop_firm FROM portfolio.accounts a"
        " WHERE EXISTS (SELECT 1 FROM portfolio.deposits d WHERE d.account = a.account AND d.at <= %s)"
        " ORDER BY a.account",
        (at,),
    ).fetchall():
        deposits = float(
            one_row(
                conn.execute(
                    "SELECT coalesce(sum(amount), 0) FROM portfolio.deposits WHERE account = %s AND at <= %s",
                    (account, at),
                )
            )[0]
        )
        trades = conn.execute(
            "SELECT symbol, side, quantity::float8, price::float8, fee::float8 FROM portfolio.trades"
            " WHERE account = %s AND executed_at <= %s ORDER BY executed_at, trade_id",
            (account, at),
        ).fetchall()
        cash, held = holdings(deposits, trades)
        out.append(AccountState(account, kind, market, cash, held, deposits, mode, protections, prop_firm))
    return out


def account_states_at(conn: psycopg.Connection, times: list[datetime]) -> dict[datetime, list[AccountState]]:
    """:func:`account_states` at each of ``times``, from one read of the ledger and one replay in time order (not
    one replay from the start per time: linear in trades plus times)."""
    accounts = conn.execute(
        "SELECT account, kind, market, mode, protections, prop_firm FROM portfolio.accounts ORDER BY account"
    ).fetchall()
    deposits = conn.execute("SELECT account, at, amount::float8 FROM portfolio.deposits ORDER BY at").fetchall()
    trades = conn.execute(
        "SELECT account, executed_at, symbol, side, quantity::float8, price::float8, fee::float8"
        " FROM portfolio.trades ORDER BY executed_at, trade_id"
    ).fetchall()
    cash = {a[0]: 0.0 for a in accounts}
    net = dict(cash)
    held: dict[str, dict[str, float]] = {a[0]: {} for a in accounts}
    out, d, t = {}, 0, 0
    opened: set[str] = set()  # accounts whose opening deposit is at or before the time (account_states' rule)
    for at in sorted(set(times)):
        while d < len(deposits) and deposits[d][1] <= at:
            account, _, amount = deposits[d]
            if account in cash:
                cash[account] += amount
                net[account] += amount
                opened.add(account)
            d += 1
        while t < len(trades) and trades[t][1] <= at:
            account, _, symbol, side, quantity, price, fee = trades[t]
            if account in cash:
                cash[account], changed = holdings(cash[account], [(symbol, side, quantity, price, fee)])
                position = held[account].get(symbol, 0.0) + changed.get(symbol, 0.0)
                held[account] = {k: v for k, v in {**held[account], symbol: position}.items() if v != 0}
            t += 1
        out[at] = [
            AccountState(a, k, m, cash[a], dict(held[a]), net[a], mode, p, f)
            for a, k, m, mode, p, f in accounts
            if a in opened
        ]
    return out


def holdings(cash: float, trades: list[tuple[str, str, float, float, float]]) -> tuple[float, dict[str, float]]:
    """Cash and non-zero positions after ``trades`` ((symbol, side, quantity, price, fee), in time order) from
    ``cash``: the one replay of a ledger (the accounts' and the rules engine's shadow ledgers)."""
    positions: dict[str, float] = {}
    for symbol, side, quantity, price, fee in trades:
        sign = 1.0 if side == "buy" else -1.0
        positions[symbol] = positions.get(symbol, 0.0) + sign * quantity
        cash -= sign * quantity * price + fee
    return cash, {k: v for k, v in positions.items() if v != 0}


# PAPER_PREFIX (lib/portfolio/ledger.py): the trade ids the platform writes for paper accounts, paper-<day>-<symbol>,
# refused on import; so the functions below delete only what the platform wrote.


def replace_paper_fills(conn: psycopg.Connection, account: str, decision_day: date, fills: list[Trade]) -> None:
    """Make the paper account's fills for ``decision_day``'s recommendation exactly ``fills`` (one transaction)."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM portfolio.trades WHERE account = %s AND trade_id LIKE %s",
            (account, f"{PAPER_PREFIX}{decision_day.isoformat()}-%"),
        )
        _insert_trades(conn, account, fills)


def delete_paper_fills_after(conn: psycopg.Connection, market: str, after: datetime) -> int:
    """Remove every paper fill executed after ``after`` (a re-run replays the paper ledgers from there)."""
    return conn.execute(
        "DELETE FROM portfolio.trades t USING portfolio.accounts a WHERE a.account = t.account AND a.mode = 'paper'"
        " AND a.market = %s AND t.trade_id LIKE %s AND t.executed_at > %s",
        (market, f"{PAPER_PREFIX}%", after),
    ).rowcount


def paper_fill_ids_after(conn: psycopg.Connection, market: str, after: datetime) -> dict[str, set[str]]:
    """Per paper account of ``market``, the ids of its paper fills executed after ``after`` (what
    delete_paper_fills_after would remove)."""
    out: dict[str, set[str]] = {}
    for account, trade_id in conn.execute(
        "SELECT t.account, t.trade_id FROM portfolio.trades t JOIN portfolio.accounts a USING (account)"
        " WHERE a.mode = 'paper' AND a.market = %s AND t.trade_id LIKE %s AND t.executed_at > %s",
        (market, f"{PAPER_PREFIX}%", after),
    ).fetchall():
        out.setdefault(account, set()).add(trade_id)
    return out


def trade_history(conn: psycopg.Connection, account: str) -> list[Trade]:
    """The account's trades in time order (for the evaluation's equity curve)."""
    return [
        Trade(*row)
        for row in conn.execute(
            "SELECT trade_id, symbol, side, quantity, price, fee, executed_at FROM portfolio.trades"
            " WHERE account = %s ORDER BY executed_at, trade_id",
            (account,),
        ).fetchall()
    ]


def market_trades(conn: psycopg.Connection, market: str, until: datetime) -> dict[str, list[Trade]]:
    """Every trade (imported and paper) of the accounts of ``market`` executed at or before ``until``, per account,
    in time order (the record the knowledge layer's trade and position documents tell); later trades are not read."""
    out: dict[str, list[Trade]] = {}
    for account, *row in conn.execute(
        "SELECT t.account, t.trade_id, t.symbol, t.side, t.quantity, t.price, t.fee, t.executed_at"
        " FROM portfolio.trades t JOIN portfolio.accounts a USING (account)"
        " WHERE a.market = %s AND t.executed_at <= %s ORDER BY t.account, t.executed_at, t.trade_id",
        (market, until),
    ).fetchall():
        out.setdefault(account, []).append(Trade(*row))
    return out


def equity(conn: psycopg.Connection, state: AccountState, at: datetime) -> float:
    """Cash plus positions at the last daily close before ``at`` (the marts' store; a symbol without one counts 0)."""
    closes = marts.closes_before(conn, state.market, list(state.positions), at) if state.positions else {}
    return state.cash + sum(quantity * closes.get(symbol, 0.0) for symbol, quantity in state.positions.items())


def accounts_of_market(conn: psycopg.Connection, market: str, mode: str | None = None) -> list[str]:
    """The accounts trading ``market`` (only those of ``mode``, 'real' or 'paper', when given), by name."""
    return [
        a
        for (a,) in conn.execute(
            "SELECT account FROM portfolio.accounts WHERE market = %s AND (%s::text IS NULL OR mode = %s)"
            " ORDER BY account",
            (market, mode, mode),
        ).fetchall()
    ]


def account_markets(conn: psycopg.Connection) -> dict[str, str]:
    """Every account's market, by account."""
    return dict(conn.execute("SELECT account, market FROM portfolio.accounts").fetchall())


def imported_trades(conn: psycopg.Connection, account: str, until: datetime | None = None) -> list[Trade]:
    """The account's imported trades (not the platform's paper fills) executed at or before ``until`` (all when
    None), in time order."""
    return [
        Trade(*row)
        for row in conn.execute(
            "SELECT trade_id, symbol, side, quantity, price, fee, executed_at FROM portfolio.trades"
            " WHERE account = %s AND trade_id NOT LIKE %s AND (%s::timestamptz IS NULL OR executed_at <= %s)"
            " ORDER BY executed_at, trade_id",
            (account, f"{PAPER_PREFIX}%", until, until),
        ).fetchall()
    ]


def held_trade_ids(conn: psycopg.Connection, account: str, trade_ids: Sequence[str]) -> set[str]:
    """Which of ``trade_ids`` the account's ledger holds."""
    return {
        t
        for (t,) in conn.execute(
            "SELECT trade_id FROM portfolio.trades WHERE account = %s AND trade_id = ANY(%s)",
            (account, list(trade_ids)),
        ).fetchall()
    }


def replace_profit_splits(conn: psycopg.Connection, month: date, rows: list[tuple]) -> None:
    """The month's splits: (month, account, to_account, equity_start, equity_end, net_deposits, profit, transfer)."""
    with conn.transaction():
        conn.execute("DELETE FROM portfolio.profit_splits WHERE month = %s", (month,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO portfolio.profit_splits"
                " (month, account, to_account, equity_start, equity_end, net_deposits, profit, transfer)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


def _jsonb(value: dict | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def exits_between(conn: psycopg.Connection, start: datetime, end: datetime) -> dict[str, list[Trade]]:
    """Every sell with start <= executed_at < end, per account, in time order (what the guards count)."""
    out: dict[str, list[Trade]] = {}
    for account, *row in conn.execute(
        "SELECT account, trade_id, symbol, side, quantity, price, fee, executed_at FROM portfolio.trades"
        " WHERE side = 'sell' AND executed_at >= %s AND executed_at < %s ORDER BY executed_at, trade_id",
        (start, end),
    ).fetchall():
        out.setdefault(account, []).append(Trade(*row))
    return out


def first_deposit(conn: psycopg.Connection) -> datetime | None:
    """When the first account opened (its first deposit), or None without accounts."""
    return one_row(conn.execute("SELECT min(at) FROM portfolio.deposits"))[0]


def latest_profit_splits(conn: psycopg.Connection, before: date) -> list[tuple]:
    """The profit splits of the latest month that began before ``before``: (month, account, to_account,
    equity_start, equity_end, profit, transfer, net_deposits) rows."""
    return conn.execute(
        "SELECT month, account, to_account, equity_start, equity_end, profit, transfer, net_deposits"
        " FROM portfolio.profit_splits WHERE month = (SELECT max(month) FROM portfolio.profit_splits"
        " WHERE month < %s) ORDER BY account",
        (before,),
    ).fetchall()


def account_names(conn: psycopg.Connection) -> set[str]:
    """The names of the accounts held (a CSV of trades may only name these)."""
    return {name for (name,) in conn.execute("SELECT account FROM portfolio.accounts").fetchall()}


def stop_exits(conn: psycopg.Connection, since: datetime) -> list[tuple[str, str, str, float, datetime]]:
    """The paper stop-loss and take-profit fills since ``since`` (ids ending -sl / -tp): account, trade id,
    symbol, price, time, oldest first."""
    return conn.execute(
        "SELECT account, trade_id, symbol, price::float8, executed_at FROM portfolio.trades"
        " WHERE trade_id LIKE %s AND (trade_id LIKE %s OR trade_id LIKE %s) AND executed_at >= %s"
        " ORDER BY executed_at, trade_id",
        (f"{PAPER_PREFIX}%", "%-sl", "%-tp", since),
    ).fetchall()


def guard_settings(conn: psycopg.Connection) -> dict[str, tuple[dict | None, dict | None, float]]:
    """Per account, what its guards are configured with: (protections, prop_firm, opening deposit)."""
    return {
        account: (protections, prop_firm, float(opening or 0.0))
        for account, protections, prop_firm, opening in conn.execute(
            "SELECT a.account, a.protections, a.prop_firm, (SELECT d.amount::float8 FROM portfolio.deposits d"
            " WHERE d.account = a.account ORDER BY d.at LIMIT 1) FROM portfolio.accounts a"
        ).fetchall()
    }
