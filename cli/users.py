"""`pingan users`, `pingan tokens` and `pingan demo users`: identities for the service.

Passwords are read from standard input only (``--password-stdin``; with a terminal, a hidden
prompt asked twice), never from the command line, where other users of the machine could see
them in the process list and where shell history keeps them.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import config
from cli.common import engine, fail

users_app = typer.Typer(help="Users of the service: add, list, disable, enable, reset passwords.",
                        no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for scripts, GDAL and QGIS (Authorization: Bearer).",
                         no_args_is_help=True)

DEMO_ROLES = ("admin", "command", "town", "grid", "analyst", "public")


def _actor():  # noqa: ANN202 - api.auth.store.Actor
    from api.auth.store import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return Actor(f"cli:{who}")


def _run(work):  # noqa: ANN001, ANN202 - work(conn) in one transaction; operator errors exit 2
    from sqlalchemy.exc import DBAPIError

    from api.auth.credentials import PasswordPolicyError
    from api.auth.store import IdentityError

    eng = engine()
    try:
        with eng.begin() as conn:
            return work(conn)
    except (IdentityError, PasswordPolicyError) as exc:
        raise fail(str(exc)) from None
    except DBAPIError as exc:
        if "pingan.users" in str(exc.orig) or "does not exist" in str(exc.orig):
            raise fail("the identity tables are missing: run `pingan db up` (or `pingan db migrate`)") \
                from None
        raise
    finally:
        eng.dispose()


def _read_password(password_stdin: bool) -> str:
    from api.auth.credentials import PasswordPolicyError, check_password_policy

    if not password_stdin:
        raise fail("pass --password-stdin and write the password to standard input "
                    "(passwords are never taken from the command line)")
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise fail("the two passwords differ")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        check_password_policy(password)
    except PasswordPolicyError as exc:
        raise fail(str(exc)) from None
    return password


def _when(value) -> str:  # noqa: ANN001 - datetime | None
    return "-" if value is None else f"{value.astimezone():%Y-%m-%d %H:%M}"


PasswordStdin = Annotated[bool, typer.Option("--password-stdin",
                                             help="read the password from standard input")]


# -- pingan users ------------------------------------------------------------------------------
@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login name: lower-case letters, digits, . _ @ -")],
    role: Annotated[str, typer.Option(help="admin | command | town | grid | analyst | public")],
    area: Annotated[list[str] | None, typer.Option(help="town: its 9-digit code; grid: 15-digit grid codes "
                                                        "(repeat the option)")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user; the password comes from standard input."""
    from api.auth import store

    try:  # before asking for the password
        store.validate_name(name)
        if role not in store.USER_ROLES:
            raise store.IdentityError(f"unknown role {role!r}; expected one of {', '.join(store.USER_ROLES)}")
    except store.IdentityError as exc:
        raise fail(str(exc)) from None
    password = _read_password(password_stdin)
    _run(lambda conn: store.add_user(conn, _actor(), name, role, area or [], password))
    where = f" for {', '.join(area)}" if area else ""
    typer.echo(f"added user {name} ({role}{where})")


@users_app.command("list")
def users_list() -> None:
    """List the users: role, areas, state, last login, active tokens."""
    from api.auth import store

    rows = _run(store.list_users)
    typer.echo(f"{'name':<20} {'role':<8} {'state':<9} {'last login':<16} {'tokens':>6}  areas")
    for u in rows:
        state = "disabled" if u.disabled else ("locked" if u.locked_until else "active")
        typer.echo(f"{u.name:<20} {u.role:<8} {state:<9} {_when(u.last_login_at):<16} "
                   f"{u.active_tokens:>6}  {','.join(u.areas) or '-'}")


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Disable a user: its sessions end now, its tokens and passwords stop working (a worker that
    verified the password less than PINGAN_AUTH_BASIC_CACHE_SECONDS ago may accept it until then)."""
    from api.auth import store

    changed = _run(lambda conn: store.set_disabled(conn, _actor(), name, True))
    typer.echo(f"disabled {name}" if changed else f"{name} was disabled already")


@users_app.command("enable")
def users_enable(name: str) -> None:
    """Enable a disabled user."""
    from api.auth import store

    changed = _run(lambda conn: store.set_disabled(conn, _actor(), name, False))
    typer.echo(f"enabled {name}" if changed else f"{name} was enabled already")


@users_app.command("reset-password")
def users_reset_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (from standard input); ends the user's sessions and lifts its lock."""
    from api.auth import store

    password = _read_password(password_stdin)
    ended = _run(lambda conn: store.reset_password(conn, _actor(), name, password))
    typer.echo(f"password of {name} changed; {ended} session(s) ended")


@users_app.command("unlock")
def users_unlock(name: str) -> None:
    """Lift the lock that failed logins put on a user name."""
    from api.auth import store

    changed = _run(lambda conn: store.unlock(conn, _actor(), name))
    typer.echo(f"unlocked {name}" if changed else f"{name} was not locked")


# -- pingan tokens -----------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="what the token is for, e.g. qgis-laptop")],
    user: Annotated[str | None, typer.Option(help="the user it acts as (default: the user NAME)")] = None,
    expires_days: Annotated[int | None, typer.Option(help="days until it expires (default 90)")] = None,
) -> None:
    """Create an API token; it is printed once and cannot be shown again."""
    from api.auth import AuthSettings, store

    settings = AuthSettings()
    days = expires_days if expires_days is not None else settings.token_default_days
    t = _run(lambda conn: store.create_token(conn, _actor(), user or name, name, days,
                                             settings.token_max_days))
    typer.echo(f"token {t.id} '{t.name}' for {t.user}, expires {_when(t.expires_at)}; "
               "store it now, it is not shown again:", err=True)
    typer.echo(t.token)


@tokens_app.command("list")
def tokens_list(user: Annotated[str | None, typer.Option(help="only this user's tokens")] = None) -> None:
    """List tokens (never their values)."""
    from api.auth import store

    rows = _run(lambda conn: store.list_tokens(conn, user))
    typer.echo(f"{'id':>5} {'user':<20} {'status':<8} {'expires':<16} {'last used':<16} name")
    for t in rows:
        typer.echo(f"{t.id:>5} {t.user:<20} {t.status:<8} {_when(t.expires_at):<16} "
                   f"{_when(t.last_used_at):<16} {t.name}")


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="from `pingan tokens list`")],
) -> None:
    """Revoke a token: it stops working at once."""
    from api.auth import store

    changed = _run(lambda conn: store.revoke_token(conn, _actor(), token_id))
    typer.echo(f"revoked token {token_id}" if changed else f"token {token_id} was revoked already")


# -- pingan demo users -------------------------------------------------------------------------
def demo_users(
    reset: Annotated[bool, typer.Option(help="new passwords even if the saved ones still work")] = False,
) -> None:
    """One demo user per role with a random password, written to .data/demo-users.txt (0600).
    For the demo district only; a second run keeps the users whose saved password still works."""
    path = config.data_dir() / "demo-users.txt"
    users = _run(lambda conn: _ensure_demo_users(conn, _saved(path), reset))
    _save(path, users)
    typer.echo(f"demo users (also in {path}):")
    typer.echo(f"  {'user':<14} {'password':<22} {'role':<8} areas")
    for name, password, role, areas in users:
        typer.echo(f"  {name:<14} {password:<22} {role:<8} {','.join(areas) or '-'}")


def _saved(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    saved = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("demo-"):
            saved[parts[0]] = parts[1]
    return saved


def _ensure_demo_users(conn, saved: dict[str, str], reset: bool) -> list[tuple[str, str, str, list[str]]]:  # noqa: ANN001
    from sqlalchemy import text

    from api.auth import store
    from api.auth.credentials import generate_password, verify_password

    demo = conn.execute(text("SELECT 1 FROM pingan.etl_batches WHERE source = 'demo' AND layer = 'demo' "
                             "AND status = 'done' LIMIT 1")).first()
    town = conn.execute(text("SELECT code FROM pingan.towns WHERE source = 'demo' "
                             "ORDER BY code LIMIT 1")).scalar()
    if demo is None or town is None:
        raise store.IdentityError("the demo district is not loaded: run `pingan demo load` first")
    grids = list(conn.execute(text(
        "SELECT g.code FROM pingan.grids g JOIN pingan.villages v ON v.code = g.village_code "
        "WHERE v.town_code = :t ORDER BY g.code LIMIT 2"), {"t": town}).scalars())
    areas = {"town": [town], "grid": grids}
    actor, out = _actor(), []
    for role in DEMO_ROLES:
        name, want = f"demo-{role}", areas.get(role, [])
        row = conn.execute(text("SELECT role, areas, disabled, password_hash FROM pingan.users "
                                "WHERE name = :n"), {"n": name}).first()
        password = saved.get(name)
        keep = (not reset and row is not None and password is not None and row[0] == role
                and list(row[1]) == want and not row[2] and verify_password(row[3], password))
        if not keep:
            password = generate_password()
            if row is None:
                store.add_user(conn, actor, name, role, want, password)
            else:
                conn.execute(text("UPDATE pingan.users SET role = :r, areas = :a, disabled = false, "
                                  "updated_at = now() WHERE name = :n"), {"r": role, "a": want, "n": name})
                store.reset_password(conn, actor, name, password)
        out.append((name, password, role, want))
    return out


def _save(path: Path, users: list[tuple[str, str, str, list[str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Pingan Map demo users (pingan demo users): user password role areas\n")
        for name, password, role, areas in users:
            fh.write(f"{name} {password} {role} {','.join(areas) or '-'}\n")
    tmp.replace(path)
