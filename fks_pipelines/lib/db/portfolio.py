"""The ledger in PostgreSQL: importing it (all or nothing), and an account's state at a point in time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg

from fks_pipelines.lib.db.connect import one_row
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.lib.portfolio.ledger import Account, Trade, check_account


def import_accounts(conn: psycopg.Connection, accounts: list[Account], market: str) -> int:
    """Replace each account in the file (its deposits and trades) in one transaction; returns trades written."""
    n = 0
    with conn.transaction():
        for a in accounts:
            conn.execute("DELETE FROM portfolio.accounts WHERE account = %s", (a.name,))
            conn.execute(
                "INSERT INTO portfolio.accounts (account, kind, market, mode) VALUES (%s, %s, %s, %s)",
                (a.name, a.kind, market, a.mode),
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


def account_states(conn: psycopg.Connection, at: datetime) -> list[AccountState]:
    """Every account as of ``at``: deposits and trades up to then, nothing later."""
    out = []
    for account, kind, market, mode in conn.execute(
        "SELECT account, kind, market, mode FROM portfolio.accounts ORDER BY account"
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
        out.append(AccountState(account, kind, market, cash, held, deposits, mode))
    return out


def account_states_at(conn: psycopg.Connection, times: list[datetime]) -> dict[datetime, list[AccountState]]:
    """:func:`account_states` at each of ``times``, from one read of the ledger and one replay in time order (not
    one replay from the start per time: linear in trades plus times)."""
    accounts = conn.execute("SELECT account, kind, market, mode FROM portfolio.accounts ORDER BY account").fetchall()
    deposits = conn.execute("SELECT account, at, amount::float8 FROM portfolio.deposits ORDER BY at").fetchall()
    trades = conn.execute(
        "SELECT account, executed_at, symbol, side, quantity::float8, price::float8, fee::float8"
        " FROM portfolio.trades ORDER BY executed_at, trade_id"
    ).fetchall()
    cash = {a[0]: 0.0 for a in accounts}
    net = dict(cash)
    held: dict[str, dict[str, float]] = {a[0]: {} for a in accounts}
    out, d, t = {}, 0, 0
    for at in sorted(set(times)):
        while d < len(deposits) and deposits[d][1] <= at:
            account, _, amount = deposits[d]
            if account in cash:
                cash[account] += amount
                net[account] += amount
            d += 1
        while t < len(trades) and trades[t][1] <= at:
            account, _, symbol, side, quantity, price, fee = trades[t]
            if account in cash:
                cash[account], changed = holdings(cash[account], [(symbol, side, quantity, price, fee)])
                position = held[account].get(symbol, 0.0) + changed.get(symbol, 0.0)
                held[account] = {k: v for k, v in {**held[account], symbol: position}.items() if v != 0}
            t += 1
        out[at] = [AccountState(a, k, m, cash[a], dict(held[a]), net[a], mode) for a, k, m, mode in accounts]
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


PAPER_PREFIX = "paper-"  # trade ids the platform writes for paper accounts: paper-<decision day>-<symbol>


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


def equity(conn: psycopg.Connection, state: AccountState, at: datetime) -> float:
    """Cash plus positions at the last daily close before ``at``."""
    total = state.cash
    for symbol, quantity in state.positions.items():
        row = conn.execute(
            "SELECT close::float8 FROM marts.fct_ohlcv_1d"
            " WHERE market = %s AND symbol = %s AND bucket < %s ORDER BY bucket DESC LIMIT 1",
            (state.market, symbol, at),
        ).fetchone()
        total += quantity * (row[0] if row else 0.0)
    return total


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
