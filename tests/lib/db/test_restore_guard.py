"""fks db restore refuses what would lose data: a dump of the other database (Dagster's storage into the data
database and back), a dump older than what the database holds (runs; accounts, trades) unless --force, naming what
would be lost; it backs the current state up first. A file pg_restore cannot read, and a backup path that cannot be
written, are one line, exit 2, nothing written."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from dagster._core.storage.dagster_run import DagsterRun
from dagster_postgres import PostgresRunStorage

from fks_pipelines.cli import main
from fks_pipelines.lib.db.backup import backup, dump_tables, restore
from fks_pipelines.lib.db.connect import with_database
from fks_pipelines.lib.errors import BadInputError

ACCOUNT = (
    "accounts:\n  - {{name: {name}, kind: personal, cash: 1000, cash_at: 2024-01-01T00:00:00Z, trades: [{trades}]}}\n"
)
TRADE = "{{id: {id}, symbol: BTCUSDT, side: buy, quantity: 0.001, price: 60000, at: 2024-05-0{day}T10:00:00Z}}"


@pytest.fixture
def dagster_url(databases):
    """A database holding Dagster's run storage (the tables `dagster dev` creates), with no runs yet."""
    name = f"test_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(databases.admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(databases.admin, name)
    PostgresRunStorage(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    yield url
    databases.drop(url)


def add_runs(url: str, n: int) -> list[str]:
    storage = PostgresRunStorage(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for run_id in ids:
        storage.add_run(DagsterRun(job_name="probe_job", run_id=run_id))
    return ids


def fks(args: list[str], db_url: str):
    return CliRunner().invoke(main, args, env={"FKS_DATABASE_URL": db_url}, catch_exceptions=False)


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def import_account(db_url: str, tmp_path: Path, name: str, trades: list[tuple[str, int]]) -> None:
    body = ACCOUNT.format(name=name, trades=", ".join(TRADE.format(id=i, day=d) for i, d in trades))
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    result = fks(["portfolio", "import", str(path)], db_url)
    assert result.exit_code == 0, result.output


def accounts(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT account FROM portfolio.accounts ORDER BY 1")]


def test_a_dump_of_the_other_database_is_refused_and_nothing_is_created(db_url, dagster_url, tmp_path):
    add_runs(dagster_url, 1)
    dagster_dump = backup(dagster_url, tmp_path / "dagster.dump")
    fks_dump = backup(db_url, tmp_path / "fks.dump")
    assert ("public", "runs") in dump_tables(dagster_dump)

    line = one_line_error(fks(["db", "restore", str(dagster_dump)], db_url))
    assert "a backup of the dagster database, not of fks: restore it with --database dagster" in line
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('public.runs')").fetchone()[0] is None
    with pytest.raises(BadInputError, match="a backup of the fks database, not of dagster"):
        restore(dagster_url, fks_dump, database="dagster")
    with psycopg.connect(dagster_url) as conn:
        assert conn.execute("SELECT to_regclass('portfolio.accounts')").fetchone()[0] is None


def test_an_older_dagster_backup_is_refused_naming_the_runs_it_would_lose(dagster_url, tmp_path):
    add_runs(dagster_url, 1)
    dump = backup(dagster_url, tmp_path / "dagster.dump")
    later = add_runs(dagster_url, 2)
    with pytest.raises(BadInputError, match=r"would lose .*: 2 run\(s\) \(the latest: run ") as refused:
        restore(dagster_url, dump, database="dagster", before=tmp_path / "before.dump")
    assert later[-1] in str(refused.value) and "--force" in str(refused.value)
    assert not (tmp_path / "before.dump").exists()
    with psycopg.connect(dagster_url) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_an_older_data_backup_is_refused_unless_forced_and_the_current_state_is_backed_up_first(db_url, tmp_path):
    import_account(db_url, tmp_path, "a", [("t1", 1)])
    dump = tmp_path / "old.dump"
    assert fks(["db", "backup", str(dump)], db_url).exit_code == 0
    import_account(db_url, tmp_path, "b", [("t2", 2), ("t3", 3)])

    line = one_line_error(fks(["db", "restore", str(dump)], db_url))
    assert "1 account(s) (the latest: account b" in line
    assert "2 trade(s) (the latest: trade t3 of b at 2024-05-03 10:00:00+00" in line and "--force" in line
    assert accounts(db_url) == ["a", "b"]

    forced = fks(["db", "restore", str(dump), "--force"], db_url)
    assert forced.exit_code == 0, forced.output
    saved = Path(forced.stdout.split("backed up to ")[1].split("\n")[0])
    assert saved.is_file() and saved.parent.name == "backups"
    assert accounts(db_url) == ["a"]
    # The state before the restore is a backup that restores: b comes back, and restoring it keeps it.
    again = fks(["db", "restore", str(saved)], db_url)
    assert again.exit_code == 0 and str(saved) not in again.stdout.split("backed up to ")[1].split("\n")[0]
    assert accounts(db_url) == ["a", "b"]
    assert len(list(saved.parent.iterdir())) == 2


def test_a_fake_backup_is_one_line_exit_2(db_url, tmp_path):
    fake = tmp_path / "fake.dump"
    fake.write_bytes(b"PGDMP" + b"\x00garbage" * 20)
    line = one_line_error(fks(["db", "restore", str(fake)], db_url))
    assert str(fake) in line and "not a readable backup" in line


@pytest.mark.parametrize("output", ["/etc/passwd/x.dump", ""])
def test_a_backup_path_that_cannot_be_written_is_one_line_exit_2(db_url, tmp_path, output):
    output = output.format(tmp=tmp_path)
    line = one_line_error(fks(["db", "backup", output], db_url))
    assert "backup file" in line
    assert list(tmp_path.iterdir()) == []
