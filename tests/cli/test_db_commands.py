"""`pingan db url` prints the URL of the database in use, which psql and psycopg accept."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

PINGAN = [sys.executable, "-m", "cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PINGAN, *args], capture_output=True, text=True, env=env, check=False)


def test_db_url_private_cluster_connects(target) -> None:
    if not target.private:
        pytest.skip("PINGAN_DATABASE_URL is set: the private cluster is not in use")
    env = {k: v for k, v in os.environ.items() if k != "PINGAN_DATABASE_URL"}
    out = run("db", "url", env=env)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    assert url.startswith("postgresql://pingan:")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pingan",)
        superuser, bypass = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert (superuser, bypass) == (False, False)
    psql = subprocess.run(["psql", url, "-tAc", "SELECT 42"], capture_output=True, text=True,
                          check=False)
    assert psql.stdout.strip() == "42", psql.stderr


def test_db_url_follows_environment() -> None:
    env = os.environ | {"PINGAN_DATABASE_URL": "postgresql://u:p@db.example:5432/x"}
    out = run("db", "url", env=env)
    assert out.stdout.strip() == "postgresql://u:p@db.example:5432/x"


def test_missing_cluster_gives_clear_error(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PINGAN_DATABASE_URL"}
    env["PINGAN_DATA_DIR"] = str(tmp_path)
    out = run("db", "url", env=env)
    assert out.returncode == 2
    assert "pingan db up" in out.stderr and "Traceback" not in out.stderr


def test_databases_are_created_with_collation_c_in_code_point_order(db_url) -> None:
    """The project creates its databases with collation C (text compared as bytes, so the text
    keys' B-trees build without ``strcoll``); UTF-8's byte order is code point order, so text,
    Chinese included, sorts as Python sorts it, as under glibc's C.UTF-8 before."""
    names = ["瑞安市", "瓯海区", "娄桥街道", "Zhejiang", "ouhai", "330304001", "33030400", "é", "_a", "~"]
    with psycopg.connect(db_url) as conn:
        collate = conn.execute(
            "SELECT datcollate FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
        ordered = conn.execute("SELECT array_agg(n ORDER BY n) FROM unnest(%s::text[]) AS n", (names,))
        assert ordered.fetchone()[0] == sorted(names)
        assert conn.execute("SELECT upper('ouhai é')").fetchone()[0] == "OUHAI É"  # character classes kept
    assert collate == "C"


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_etl_load_of_a_file_that_is_not_there_says_so(tmp_path, what: str) -> None:
    """A path that is no file: a clear error and a usage exit status, not a traceback."""
    path = tmp_path / "missing.csv" if what == "missing" else tmp_path
    out = run("etl", "load", str(path), "--layer", "hazards")
    assert out.returncode == 2, out.stderr
    assert ("no such file" if what == "missing" else "not a file") in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_etl_load_with_an_unknown_datum_is_a_usage_error(tmp_path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("事件编号\nH1\n", encoding="utf-8")
    out = run("etl", "load", str(path), "--layer", "hazards", "--datum", "gcj2")
    assert out.returncode == 2 and "--datum: unknown datum 'gcj2'" in out.stderr, out.stderr
