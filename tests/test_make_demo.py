"""`make demo`, run twice, as a new user runs it: the second run is quick and changes nothing.

Runs the real Makefile against a fresh database of the test server (PINGAN_DATABASE_URL), serves
on a free port, waits for /healthz, stops the server, and compares the database before and after
the second run.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

from etl.demo.load import TABLES
from layers.db import make_engine
from layers.settings import DatabaseSettings
from tests.helpers import table_fingerprint

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_make_demo(env: dict[str, str], port: int, log: Path) -> float:
    """Run `make demo` until /healthz answers 200; stop it; return the seconds it took."""
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "demo", f"PORT={port}"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = t0 + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"make demo exited {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"make demo did not serve within 300 s:\n{log.read_text()}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group we started: make and its server
        proc.wait(timeout=30)


def fingerprints(url: str) -> dict[str, str]:
    engine = make_engine(DatabaseSettings(database_url=url))
    try:
        with engine.connect() as conn:
            return {t: table_fingerprint(conn, t) for t in (*TABLES, "etl_batches", "layer_versions")}
    finally:
        engine.dispose()


def test_make_demo_twice(databases, tmp_path: Path) -> None:
    url = databases.create()
    env = os.environ | {
        "PINGAN_DATABASE_URL": url,
        "PINGAN_SERVICE_DATABASE_URL": databases.service_url(url),
        "PINGAN_DATA_DIR": str(tmp_path / "data"),  # demo-users.txt goes there, not into the checkout
        "PINGAN_DATA_KEY": "k1:" + base64.b64encode(os.urandom(32)).decode(),
    }
    first = run_make_demo(env, free_port(), tmp_path / "first.log")
    log1 = (tmp_path / "first.log").read_text()
    assert "loaded the demo district" in log1, log1
    assert "http://127.0.0.1:" in log1  # it prints the URLs
    assert "demo-command" in log1 and "demo-public" in log1  # and the demo users, one per role
    assert (tmp_path / "data" / "demo-users.txt").stat().st_mode & 0o077 == 0
    before = fingerprints(url)
    assert before["hazards"].startswith("30000:")

    second = run_make_demo(env, free_port(), tmp_path / "second.log")
    log2 = (tmp_path / "second.log").read_text()
    assert "already loaded" in log2 and "nothing changed" in log2, log2
    assert fingerprints(url) == before
    assert second < 30, f"second run took {second:.1f} s (first {first:.1f} s)"

    engine = make_engine(DatabaseSettings(database_url=url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pingan.etl_batches")).scalar_one() == 1
    engine.dispose()
