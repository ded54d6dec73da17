"""The analyst role reads the marts and can change nothing anywhere; the guide's example queries
(docs/analysts.md) run as it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, timedelta

import psycopg
import pytest

from fks_pipelines.lib.db.knowledge import ensure_chunk_table
from fks_pipelines.lib.db.raw import replace_klines
from fks_pipelines.lib.db.roles import ANALYST, ANALYST_GRANTS, analyst_gaps, enable_analyst_login, url_for_role
from fks_pipelines.lib.klines import LoadScope
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


@pytest.fixture
def cli_login(analyst):
    """For a test whose `fks db analyst-url` replaces the role's password and limits: the fixture's come back after."""
    yield
    with psycopg.connect(analyst[0], autocommit=True) as conn:
        enable_analyst_login(conn, "analyst-test-password")


def guide_queries() -> list[str]:
    guide = (PROJECT_ROOT / "docs" / "analysts.md").read_text()
    section = guide.split("## Example queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_the_guide_has_five_queries_that_run_as_the_analyst(analyst):
    _, analyst_url = analyst
    queries = guide_queries()
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
        # no large objects: they would be writes
        "SELECT lo_from_bytea(0, 'x')",
        "SELECT lo_create(0)",
        "SELECT lo_creat(-1)",
        # no advisory locks: the migrations' and the loaders' keys would stall every migration and load
        "SELECT pg_advisory_lock(6712947)",
        "SELECT pg_try_advisory_lock(6712947)",
        "SELECT pg_advisory_xact_lock(hashtext('raw.binance_klines'), hashtext('spot/1m'))",
        "SELECT pg_try_advisory_xact_lock_shared(1, 2)",
        # no portfolio (account names, cash, trades), no prompts or raw answers (they quote the cash)
        "SELECT * FROM portfolio.accounts",
        "SELECT * FROM portfolio.trades",
        "SELECT * FROM portfolio.deposits",
        "SELECT prompt FROM recommendations.generations",
        "SELECT raw_response FROM recommendations.generations",
        "SELECT llm_error FROM recommendations.generations",
    ],
)
def test_analyst_cannot_write_or_read_beyond_marts(analyst, statement):
    _, analyst_url = analyst
    with psycopg.connect(analyst_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_analyst_reads_every_mart(analyst):
    _, analyst_url = analyst
    with psycopg.connect(analyst_url) as conn:
        for table in ("fct_ohlcv_1h", "fct_ohlcv_1d", "fct_returns", "dim_symbols"):
            assert conn.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0] > 0


def test_analyst_url_command_creates_a_working_login(db_url, tmp_path, cli_login):
    from click.testing import CliRunner

    from fks_pipelines.cli import main

    env = {"FKS_DATABASE_URL": db_url, "FKS_HOME": str(tmp_path / "home")}
    first = CliRunner().invoke(main, ["db", "analyst-url"], env=env, catch_exceptions=False)
    second = CliRunner().invoke(main, ["db", "analyst-url"], env=env, catch_exceptions=False)
    assert first.exit_code == 0 and first.stdout == second.stdout
    url = first.stdout.strip()
    assert url.startswith("postgresql://analyst:")
    assert oct((tmp_path / "home" / "secrets" / "analyst.password").stat().st_mode & 0o777) == "0o600"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("analyst",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM raw.binance_klines")


@pytest.mark.parametrize("database", ["postgres", "dagster", "template1"])
def test_analyst_cannot_connect_to_the_other_databases(analyst, database):
    _, analyst_url = analyst
    with pytest.raises(psycopg.OperationalError, match=f'permission denied for database "{database}"'):
        psycopg.connect(analyst_url.rsplit("/", 1)[0] + f"/{database}")


def test_analyst_gaps_name_only_what_is_still_open(analyst, pg_server):
    """On the embedded server nothing is open but databases created outside the platform (as here)."""
    url, _ = analyst
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute('CREATE DATABASE "created_by_hand"')
    try:
        with psycopg.connect(url) as conn:
            gaps = analyst_gaps(conn)
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
            admin.execute('DROP DATABASE "created_by_hand"')
    assert "can connect to database 'created_by_hand'" in gaps
    # The session server's data database (fks) and other tests' databases are data databases too; nothing else.
    assert all(re.fullmatch(r"can connect to database '(fks|test_\w+|created_by_hand)'", g) for g in gaps), gaps


_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")
# Every schema but PostgreSQL's own and TimescaleDB's internal ones (which the extension manages).
_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname !~ '^(pg_toast|pg_temp|_timescaledb|timescaledb_)'"
)


def _actual_grants(conn: psycopg.Connection) -> set[tuple[str, str, tuple[str, ...] | None, str]]:
    """(schema, relation, columns or None for the whole relation, privilege) the analyst role holds, everywhere."""
    tables = conn.execute(
        f"""SELECT n.nspname, c.relname, p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                   unnest(%s::text[]) p
            WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND {_USER_SCHEMA} AND has_table_privilege(%s, c.oid, p)
            UNION ALL
            SELECT n.nspname, c.relname, p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                   unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p
            WHERE c.relkind = 'S' AND {_USER_SCHEMA} AND has_sequence_privilege(%s, c.oid, p)""",
        (list(_PRIVILEGES), ANALYST, ANALYST),
    ).fetchall()
    columns = conn.execute(
        f"""SELECT n.nspname, c.relname, p, array_agg(a.attname::text ORDER BY a.attname)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace,
                 unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
            WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'p', 'f') AND {_USER_SCHEMA}
              AND has_column_privilege(%s, c.oid, a.attnum, p) AND NOT has_table_privilege(%s, c.oid, p)
            GROUP BY 1, 2, 3""",
        (ANALYST, ANALYST),
    ).fetchall()
    return {(s, t, None, p) for s, t, p in tables} | {(s, t, tuple(cols), p) for s, t, p, cols in columns}


def test_analyst_privileges_are_exactly_the_documented_grants(analyst):
    url, _ = analyst
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_chunk_table(conn, 4)  # knowledge.chunks exists once embeddings are built
        expected = set()
        for grant in ANALYST_GRANTS:
            if grant.table == "*":
                names = [
                    r[0]
                    for r in conn.execute(
                        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace"
                        " AND relkind IN ('r', 'v', 'm', 'p', 'f')",
                        (grant.schema,),
                    )
                ]
                assert names, f"nothing in {grant.schema} to check"
            else:
                names = [grant.table]
            columns = tuple(sorted(grant.columns)) if grant.columns else None
            expected |= {(grant.schema, name, columns, "SELECT") for name in names}
        assert _actual_grants(conn) == expected
        schemas = conn.execute(
            f"SELECT n.nspname, p FROM pg_namespace n, unnest(ARRAY['USAGE', 'CREATE']) p"
            f" WHERE {_USER_SCHEMA} AND has_schema_privilege(%s, n.oid, p)",
            (ANALYST,),
        ).fetchall()
        assert set(schemas) == {(s, "USAGE") for s in {g.schema for g in ANALYST_GRANTS} | {"public"}}


def test_analyst_url_applies_the_limits_from_settings(db_url, tmp_path, cli_login):
    from click.testing import CliRunner

    from fks_pipelines.cli import main

    env = {
        "FKS_DATABASE_URL": db_url,
        "FKS_HOME": str(tmp_path / "home"),
        "FKS_ANALYST_STATEMENT_TIMEOUT": "0.5",
        "FKS_ANALYST_CONNECTION_LIMIT": "2",
        "FKS_ANALYST_WORK_MEM": "8MB",
    }
    result = CliRunner().invoke(main, ["db", "analyst-url"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    with psycopg.connect(url) as one, psycopg.connect(url):
        assert one.execute("SHOW statement_timeout").fetchone() == ("500ms",)
        assert one.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("500ms",)
        assert one.execute("SHOW work_mem").fetchone() == ("8MB",)
        with pytest.raises(psycopg.errors.QueryCanceled):
            one.execute("SELECT pg_sleep(3)")
        with pytest.raises(psycopg.OperationalError, match='too many connections for role "analyst"'):
            psycopg.connect(url)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FKS_ANALYST_STATEMENT_TIMEOUT", "soon"),
        ("FKS_ANALYST_CONNECTION_LIMIT", "0"),
        ("FKS_ANALYST_WORK_MEM", "8 gigs"),
        ("FKS_LOCK_TIMEOUT", "-1"),
    ],
)
def test_a_bad_limit_is_refused_in_one_line_before_anything_is_written(db_url, tmp_path, name, value):
    home = tmp_path / "home"
    env = {**os.environ, "FKS_DATABASE_URL": db_url, "FKS_HOME": str(home), name: value}
    done = subprocess.run(
        [sys.executable, "-m", "fks_pipelines.cli", "db", "analyst-url"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"Error: environment: {name}={value!r} is not ")
    assert not home.exists()
