"""`pingan users`, `pingan tokens` and `pingan demo users` end to end against a real database
(typer's CliRunner in-process; one run through a real subprocess and pipe)."""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import subprocess
import sys

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.auth.credentials import verify_password
from cli.main import app
from layers.db import make_engine
from layers.settings import DatabaseSettings
from tests.api.auth.identity import IdentityDb, identity_db

PASSWORD = "a-long-enough-password"


@pytest.fixture(scope="module")
def idb(databases) -> IdentityDb:
    return identity_db(databases)


@pytest.fixture(scope="module")
def owner(idb: IdentityDb):
    eng = make_engine(DatabaseSettings(database_url=idb.owner_url))
    yield eng
    eng.dispose()


@pytest.fixture
def pingan(idb: IdentityDb, tmp_path, monkeypatch):
    monkeypatch.setenv("PINGAN_DATABASE_URL", idb.owner_url)
    monkeypatch.setenv("PINGAN_DATA_DIR", str(tmp_path))
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # noqa: A002, ANN202
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return run


def name() -> str:
    return f"cli{secrets.token_hex(4)}"


def user_row(owner: Engine, n: str):  # noqa: ANN201
    with owner.connect() as conn:
        return conn.execute(text("SELECT role, areas, disabled, password_hash FROM pingan.users "
                                 "WHERE name = :n"), {"n": n}).first()


def test_users_add_list_disable_enable_reset(pingan, owner) -> None:
    n = name()
    r = pingan("users", "add", n, "--role", "command", "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    row = user_row(owner, n)
    assert row.role == "command" and row.areas == [] and not row.disabled
    assert verify_password(row.password_hash, PASSWORD) and PASSWORD not in row.password_hash
    listing = pingan("users", "list").output
    assert any(line.split()[:3] == [n, "command", "active"] for line in listing.splitlines())

    assert pingan("users", "disable", n).exit_code == 0
    assert user_row(owner, n).disabled
    assert "disabled already" in pingan("users", "disable", n).output
    listing = pingan("users", "list").output
    assert any(line.split()[:3] == [n, "command", "disabled"] for line in listing.splitlines())
    assert pingan("users", "enable", n).exit_code == 0
    assert not user_row(owner, n).disabled

    r = pingan("users", "reset-password", n, "--password-stdin", input="another-long-password\n")
    assert r.exit_code == 0, r.output
    assert verify_password(user_row(owner, n).password_hash, "another-long-password")
    assert not verify_password(user_row(owner, n).password_hash, PASSWORD)
    with owner.connect() as conn:
        actions = conn.execute(text("SELECT action FROM pingan.audit_log WHERE object_id = :n ORDER BY id"),
                               {"n": n}).scalars().all()
    assert actions == ["user.add", "user.disable", "user.enable", "user.reset_password"]


def test_town_and_grid_areas_validated(pingan, owner, idb) -> None:
    ok = [("town", [idb.town]), ("grid", list(idb.grids))]
    for role, areas in ok:
        n = name()
        args = [a for code in areas for a in ("--area", code)]
        r = pingan("users", "add", n, "--role", role, *args, "--password-stdin", input=PASSWORD)
        assert r.exit_code == 0, r.output
        assert user_row(owner, n).areas == areas
    bad = [
        (["--role", "town"], "exactly one --area"),
        (["--role", "town", "--area", idb.town, "--area", idb.town[:-1] + "9"], "exactly one --area"),
        (["--role", "town", "--area", "999999999"], "no such town"),
        (["--role", "town", "--area", idb.grids[0]], "9-digit town code"),
        (["--role", "grid"], "15-digit grid codes"),
        (["--role", "grid", "--area", "330304999999999"], "no such grid"),
        (["--role", "analyst", "--area", idb.town], "leave out --area"),
        (["--role", "boss"], "unknown role"),
    ]
    for args, message in bad:
        r = pingan("users", "add", name(), *args, "--password-stdin", input=PASSWORD)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output and "Traceback" not in r.output


def test_bad_user_input_gives_clear_errors(pingan) -> None:
    n = name()
    cases = [
        (["users", "add", n, "--role", "admin"], PASSWORD, "--password-stdin"),
        (["users", "add", n, "--role", "admin", "--password-stdin"], "short", "at least 12"),
        (["users", "add", "Bad Name", "--role", "admin", "--password-stdin"], PASSWORD, "invalid user name"),
        (["users", "disable", "no-such-user"], None, "no user"),
        (["users", "reset-password", "no-such-user", "--password-stdin"], PASSWORD, "no user"),
    ]
    for args, stdin, message in cases:
        r = pingan(*args, input=stdin)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output, (args, r.output)
    assert pingan("users", "add", n, "--role", "admin", "--password-stdin", input=PASSWORD).exit_code == 0
    r = pingan("users", "add", n, "--role", "admin", "--password-stdin", input=PASSWORD)
    assert r.exit_code == 2 and "exists already" in r.output


def test_no_password_option_on_the_command_line(pingan) -> None:
    r = pingan("users", "add", name(), "--role", "admin", "--password", PASSWORD)
    assert r.exit_code != 0 and "No such option" in r.output


def test_tokens_create_list_revoke(pingan, owner) -> None:
    n = name()
    pingan("users", "add", n, "--role", "analyst", "--password-stdin", input=PASSWORD)
    r = pingan("tokens", "create", "laptop", "--user", n, "--expires-days", "7")
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("pgn_") and len(token) > 40
    with owner.connect() as conn:
        tid, days, stored = conn.execute(text(
            "SELECT t.id, round(extract(epoch FROM t.expires_at - t.created_at) / 86400), t.token_hash "
            "FROM pingan.api_tokens t JOIN pingan.users u ON u.id = t.user_id WHERE u.name = :n"),
            {"n": n}).one()
    assert days == 7 and bytes(stored) == hashlib.sha256(token.encode()).digest()
    listing = pingan("tokens", "list", "--user", n).output
    assert f"{tid:>5} {n}" in listing and "active" in listing and token not in listing
    assert pingan("tokens", "revoke", str(tid)).exit_code == 0
    assert "revoked" in pingan("tokens", "list", "--user", n).output
    assert "revoked already" in pingan("tokens", "revoke", str(tid)).output
    r = pingan("tokens", "revoke", "99999999")
    assert r.exit_code == 2 and "no token" in r.output


def test_token_defaults_and_limits(pingan, owner) -> None:
    n = name()
    pingan("users", "add", n, "--role", "admin", "--password-stdin", input=PASSWORD)
    assert pingan("tokens", "create", n).exit_code == 0  # NAME is the user by default
    with owner.connect() as conn:
        days = conn.execute(text(
            "SELECT round(extract(epoch FROM t.expires_at - t.created_at) / 86400) FROM pingan.api_tokens t "
            "JOIN pingan.users u ON u.id = t.user_id WHERE u.name = :n"), {"n": n}).scalar_one()
    assert days == 90
    r = pingan("tokens", "create", "x", "--user", n, "--expires-days", "366")
    assert r.exit_code == 2 and "between 1 and 365" in r.output
    r = pingan("tokens", "create", "orphan-" + n)
    assert r.exit_code == 2 and "no user" in r.output


def test_demo_users(pingan, owner, idb, tmp_path) -> None:
    r = pingan("demo", "users")
    assert r.exit_code == 0, r.output
    path = tmp_path / "demo-users.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [ln.split() for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert [ln[2] for ln in lines] == ["admin", "command", "town", "grid", "analyst", "public"]
    expected_areas = {"town": idb.town, "grid": ",".join(idb.grids)}
    for user, password, role, areas in lines:
        row = user_row(owner, user)
        assert row.role == role and verify_password(row.password_hash, password)
        assert areas == expected_areas.get(role, "-") and ",".join(row.areas) == expected_areas.get(role, "")
        assert f"{user}" in r.output and password in r.output
    # a second run keeps working passwords; --reset makes new ones
    assert pingan("demo", "users").exit_code == 0
    assert [ln.split() for ln in path.read_text().splitlines() if not ln.startswith("#")] == lines
    assert pingan("demo", "users", "--reset").exit_code == 0
    again = [ln.split() for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert [ln[1] for ln in again] != [ln[1] for ln in lines]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_demo_users_needs_the_demo(databases, tmp_path) -> None:
    from layers import migrate

    url = databases.create()
    eng = make_engine(DatabaseSettings(database_url=url))
    migrate.upgrade(eng)
    eng.dispose()
    env = {**os.environ, "PINGAN_DATABASE_URL": url, "PINGAN_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "cli.main", "demo", "users"], env=env, capture_output=True,
                       text=True, check=False)
    assert r.returncode == 2 and "pingan demo load" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "demo-users.txt").exists()


def test_subprocess_password_through_a_pipe(idb, owner, tmp_path) -> None:
    n = name()
    env = {**os.environ, "PINGAN_DATABASE_URL": idb.owner_url, "PINGAN_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "cli.main", "users", "add", n, "--role", "public",
                        "--password-stdin"], input=PASSWORD + "\n", env=env, capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    assert verify_password(user_row(owner, n).password_hash, PASSWORD)
