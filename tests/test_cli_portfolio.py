"""fks portfolio import against what the ledger holds: the platform's paper fills live in a reserved id space no
import can use; a re-import says what it replaces, keeps the paper ledger unless --reset-paper, and asks before
deleting anything the file does not contain (--yes for scripts; no terminal and no --yes: refused, nothing written)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from click.testing import CliRunner

from fks_pipelines.cli import main
from fks_pipelines.lib.db.portfolio import replace_paper_fills
from fks_pipelines.lib.portfolio.ledger import Trade

FKS = [sys.executable, "-m", "fks_pipelines.cli"]
PAPER = "accounts:\n  - {name: demo-personal, kind: personal, mode: paper, cash: 10000, cash_at: 2024-01-01T00:00:00Z"
BUY = "{id: t1, symbol: BTCUSDT, side: buy, quantity: 0.01, price: 60000, fee: 0.6, at: 2024-05-01T10:00:00Z}"


def fks(args: list[str], db_url: str):
    return CliRunner().invoke(main, args, env={"FKS_DATABASE_URL": db_url}, catch_exceptions=False)


def ledger(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT account, trade_id, quantity FROM portfolio.trades ORDER BY account, executed_at, trade_id"
        ).fetchall()


def write(tmp_path: Path, body: str, name: str = "ledger.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def add_paper_fills(db_url: str, account: str = "demo-personal") -> None:
    """Two paper fills, written as the daily recommendation writes them."""
    at = datetime(2024, 6, 2, 0, 0, 1, tzinfo=UTC)
    fills = [
        Trade("paper-2024-06-01-BTCUSDT", "BTCUSDT", "buy", Decimal("0.05"), Decimal("60000"), Decimal("3"), at),
        Trade("paper-2024-06-01-ETHUSDT", "ETHUSDT", "buy", Decimal("1"), Decimal("3000"), Decimal("3"), at),
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        replace_paper_fills(conn, account, date(2024, 6, 1), fills)


def test_trade_ids_with_the_paper_prefix_are_refused_in_one_line(db_url, tmp_path):
    yaml_file = write(tmp_path, PAPER + ", trades: [" + BUY.replace("id: t1", "id: paper-my-manual-buy") + "]}\n")
    result = fks(["portfolio", "import", str(yaml_file)], db_url)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "'paper-my-manual-buy'" in lines[0] and "reserved" in lines[0] and str(yaml_file) in lines[0]
    assert ledger(db_url) == []

    assert fks(["portfolio", "import", str(write(tmp_path, PAPER + "}\n"))], db_url).exit_code == 0
    csv_file = write(
        tmp_path,
        "account,trade_id,symbol,side,quantity,price,fee,executed_at\n"
        "demo-personal,PAPER-2024-06-01-BTCUSDT,BTCUSDT,buy,0.01,60000,0.6,2024-05-01T10:00:00Z\n",
        "trades.csv",
    )
    result = fks(["portfolio", "import", str(csv_file)], db_url)
    assert result.exit_code == 2 and "reserved" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert ledger(db_url) == []


def test_reimporting_the_same_file_keeps_the_paper_ledger_and_says_so(db_url, tmp_path):
    path = write(tmp_path, PAPER + "}\n")
    assert fks(["portfolio", "import", str(path)], db_url).exit_code == 0
    add_paper_fills(db_url)
    before = ledger(db_url)
    assert len(before) == 2

    result = fks(["portfolio", "import", str(path)], db_url)
    assert result.exit_code == 0, result.output
    assert "demo-personal: replaces the account (opening cash 10,000.00; trades 0 -> 0; keeps 2 paper fill(s))" in (
        result.stdout
    )
    assert ledger(db_url) == before


def test_reset_paper_deletes_the_paper_fills_only_when_confirmed(db_url, tmp_path):
    path = write(tmp_path, PAPER + "}\n")
    assert fks(["portfolio", "import", str(path)], db_url).exit_code == 0
    add_paper_fills(db_url)

    refused = fks(["portfolio", "import", str(path), "--reset-paper"], db_url)  # no terminal, no --yes
    lines = refused.stderr.strip().splitlines()
    assert refused.exit_code == 2 and len(lines) == 1, refused.output
    assert "deletes 2 paper fill(s)" in lines[0] and "--yes" in lines[0] and "nothing was written" in lines[0]
    assert len(ledger(db_url)) == 2

    done = fks(["portfolio", "import", str(path), "--reset-paper", "--yes"], db_url)
    assert done.exit_code == 0 and "deletes 2 paper fill(s)" in done.stdout
    assert ledger(db_url) == []


def test_trades_the_file_drops_are_asked_for_and_kept_paper_fills_must_still_fit(db_url, tmp_path):
    with_trade = write(tmp_path, PAPER + ", trades: [" + BUY + "]}\n")
    assert fks(["portfolio", "import", str(with_trade)], db_url).exit_code == 0
    add_paper_fills(db_url)
    without = write(tmp_path, PAPER + "}\n", "without.yaml")

    refused = fks(["portfolio", "import", str(without)], db_url)
    assert refused.exit_code == 2 and "deletes 1 trade(s) the file does not hold as they are (t1)" in refused.stderr
    assert len(ledger(db_url)) == 3

    # A file whose cash no longer pays for the kept paper fills (63,006 USDT): refused, naming the way out.
    poor = write(tmp_path, PAPER.replace("cash: 10000", "cash: 100") + "}\n", "poor.yaml")
    result = fks(["portfolio", "import", str(poor), "--yes"], db_url)
    assert result.exit_code == 2 and "paper fill(s) kept (--reset-paper drops them)" in result.stderr
    assert len(ledger(db_url)) == 3

    # Answered at a terminal: "y" deletes t1 and keeps the paper fills.
    primary, replica = pty.openpty()
    os.write(primary, b"y\n")
    answered = subprocess.run(
        [*FKS, "portfolio", "import", str(without)],
        stdin=replica,
        capture_output=True,
        text=True,
        env={**os.environ, "FKS_DATABASE_URL": db_url},
        timeout=120,
    )
    os.close(primary)
    os.close(replica)
    assert answered.returncode == 0, answered.stderr
    assert "Delete what the file does not contain?" in answered.stdout
    assert [t[1] for t in ledger(db_url)] == ["paper-2024-06-01-BTCUSDT", "paper-2024-06-01-ETHUSDT"]


def test_account_names_that_differ_only_by_case_are_refused(db_url, tmp_path):
    assert fks(["portfolio", "import", str(write(tmp_path, PAPER + "}\n"))], db_url).exit_code == 0
    other = write(tmp_path, PAPER.replace("demo-personal", "Demo-Personal") + "}\n", "other.yaml")
    result = fks(["portfolio", "import", str(other)], db_url)
    assert result.exit_code == 2 and "differs from the existing 'demo-personal' only by case" in result.stderr
    second = PAPER.removeprefix("accounts:\n").replace("demo-", "DEMO-")
    both = write(tmp_path, PAPER + "}\n" + second + "}\n", "b.yaml")
    result = fks(["portfolio", "import", str(both)], db_url)
    assert result.exit_code == 2 and "ignoring case" in result.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT array_agg(account) FROM portfolio.accounts").fetchone()[0] == ["demo-personal"]


def test_a_csv_with_a_byte_order_mark_is_read(db_url, tmp_path):
    assert fks(["portfolio", "import", str(write(tmp_path, PAPER + "}\n"))], db_url).exit_code == 0
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"\xef\xbb\xbfaccount,trade_id,symbol,side,quantity,price,fee,executed_at\r\n"
        b"demo-personal,x1,BTCUSDT,buy,0.01,60000,0.6,2024-05-01T10:00:00Z\r\n"
    )
    result = fks(["portfolio", "import", str(path)], db_url)
    assert result.exit_code == 0, result.output
    assert ledger(db_url) == [("demo-personal", "x1", Decimal("0.01000000"))]
