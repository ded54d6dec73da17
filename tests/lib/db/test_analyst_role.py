"""The analyst role reads the marts and can change nothing anywhere; the README's example queries run as it."""

from __future__ import annotations

import re
from datetime import date, timedelta

import psycopg
import pytest

from fks_pipelines.lib.db.klines import replace_klines
from fks_pipelines.lib.db.roles import ANALYST, enable_analyst_login, url_for_role
from fks_pipelines.lib.sources.klines import LoadScope
from fks_pipelines.lib.sources.sample import sample_klines
from tests.conftest import PROJECT_ROOT
from tests.support import Dbt

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture(scope="module")
def analyst(databases):
    """A database with 40 days of sample data and the marts built; yields (admin url, analyst url)."""
    url = databases.create()
    start = date(2024, 1, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(40):
            day = start + timedelta(days=i)
            frame = sample_klines(SYMBOLS, day, day + timedelta(days=1))
            replace_klines(conn, frame, LoadScope.for_day("spot", "1m", SYMBOLS, day.isoformat()), source="sample")
        enable_analyst_login(conn, "analyst-test-password")
    Dbt(url).build()
    yield url, url_for_role(url, ANALYST, "analyst-test-password")
    databases.drop(url)


def readme_queries() -> list[str]:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## SQL access for analysts", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_readme_has_five_queries_that_run_as_the_analyst(analyst):
    _, analyst_url = analyst
    queries = readme_queries()
    assert len(queries) == 5
    with psycopg.connect(analyst_url) as conn:
        results = [conn.execute(q).fetchall() for q in queries]
    latest, _incomplete, vol, by_hour, corr = results
    assert {r[1] for r in latest} == set(SYMBOLS)
    assert len(vol) == 2 and all(r[3] > 0 for r in vol)
    assert len(by_hour) == 2 * 24
    assert corr[0][1] == 39 and -1 <= corr[0][0] <= 1


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO marts.fct_ohlcv_1d (market, symbol, bucket) VALUES ('spot', 'X', now())",
        "UPDATE marts.fct_ohlcv_1d SET close = 0",
        "DELETE FROM marts.fct_returns",
        "TRUNCATE marts.dim_symbols",
        "DROP TABLE marts.fct_returns",  # a table on both paths (the rollups are views with TimescaleDB)
        "CREATE TABLE marts.mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "CREATE TEMP TABLE mine (x int)",
        "CREATE SCHEMA mine",
        "CREATE VIEW marts.v AS SELECT 1",
        "ALTER TABLE marts.fct_ohlcv_1d ADD COLUMN x int",
        "SELECT * FROM raw.binance_klines LIMIT 1",
        "SELECT * FROM raw.ingest_log LIMIT 1",
        "SELECT * FROM public.fks_schema_migrations",
        "INSERT INTO raw.binance_klines (market) VALUES ('spot')",
        "DROP SCHEMA raw CASCADE",
    ],
)
def test_analyst_cannot_write_or_read_beyond_marts(analyst, statement):
    _, analyst_url = analyst
    with psycopg.connect(analyst_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_analyst_reads_every_mart(analyst):
    _, analyst_url = analyst
    with psycopg.connect(analyst_url) as conn:
        for table in ("fct_ohlcv_1h", "fct_ohlcv_1d", "fct_returns", "dim_symbols"):
            assert conn.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0] > 0


def test_analyst_url_command_creates_a_working_login(db_url, tmp_path):
    from click.testing import CliRunner

    from fks_pipelines.cli import main

    env = {"FKS_DATABASE_URL": db_url, "FKS_HOME": str(tmp_path / "home")}
    first = CliRunner().invoke(main, ["db", "analyst-url"], env=env, catch_exceptions=False)
    second = CliRunner().invoke(main, ["db", "analyst-url"], env=env, catch_exceptions=False)
    assert first.exit_code == 0 and first.output == second.output
    url = first.output.strip()
    assert url.startswith("postgresql://analyst:")
    assert oct((tmp_path / "home" / "secrets" / "analyst.password").stat().st_mode & 0o777) == "0o600"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("analyst",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM raw.binance_klines")
