"""fks db backup / restore: a round trip on the embedded server (pg_dump and pg_restore bundled with it), a
restore that puts back exactly what was dumped, and a bad backup file refused in one line with nothing changed."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from fks_pipelines.cli import main
from fks_pipelines.lib.db.connect import connect

FKS = [sys.executable, "-m", "fks_pipelines.cli"]


def snapshot(url: str) -> dict:
    with connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
            )
        ]
        rows = conn.execute("SELECT id, note FROM public.backup_probe ORDER BY id").fetchall()
    return {"tables": tables, "rows": rows}


def test_backup_and_restore_round_trip_on_the_embedded_server(db_url, tmp_path):
    with connect(db_url) as conn:
        conn.execute("CREATE TABLE public.backup_probe (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.backup_probe VALUES (1, 'a@b:c/d'), (2, 'é')")
        conn.commit()
    before = snapshot(db_url)
    env = {"FKS_DATABASE_URL": db_url}
    dump = tmp_path / "backups" / "fks.dump"
    result = CliRunner().invoke(main, ["db", "backup", str(dump)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert dump.read_bytes()[:5] == b"PGDMP" and not dump.with_name("fks.dump.partial").exists()

    with connect(db_url) as conn:  # damage after the backup: a lost row, a changed one, a new table
        conn.execute("DELETE FROM public.backup_probe WHERE id = 2")
        conn.execute("UPDATE public.backup_probe SET note = 'changed'")
        conn.execute("CREATE TABLE public.after_backup (x int)")
        conn.commit()
    assert snapshot(db_url) != before

    result = CliRunner().invoke(main, ["db", "restore", str(dump)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    after = snapshot(db_url)
    assert after["rows"] == before["rows"] == [(1, "a@b:c/d"), (2, "é")]
    assert "public.after_backup" in after["tables"]  # --clean drops what the dump has, not newer objects
    assert [t for t in after["tables"] if t != "public.after_backup"] == before["tables"]


def test_a_file_that_is_not_a_backup_is_refused_in_one_line_and_changes_nothing(db_url, tmp_path):
    with connect(db_url) as conn:
        conn.execute("CREATE TABLE public.backup_probe (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.backup_probe VALUES (1, 'kept')")
        conn.commit()
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a dump\n")
    result = subprocess.run(
        [*FKS, "db", "restore", str(bogus)],
        env={"FKS_DATABASE_URL": db_url, "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "not a pg_dump custom-format file" in result.stderr
    assert snapshot(db_url)["rows"] == [(1, "kept")]
