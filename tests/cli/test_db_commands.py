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
