"""Users and API tokens as the CLI manages them (the owner's connection, synchronous).

Each function takes a SQLAlchemy connection inside the caller's transaction and writes an
audit record of what it changed. Errors meant for the operator are :class:`IdentityError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from api.auth.credentials import digest, hash_password, new_token

USER_ROLES = ("admin", "command", "town", "grid", "analyst", "public")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
_TOWN = re.compile(r"^[0-9]{9}$")
_GRID = re.compile(r"^[0-9]{15}$")


class IdentityError(ValueError):
    """A request the operator must correct: the message says what and how."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit log (the CLI: ``cli:<os user>``, role ``system``)."""

    name: str
    role: str = "system"


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise IdentityError(
            f"invalid user name {name!r}: 2-64 characters, lower-case letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def validate_areas(conn: Connection, role: str, areas: list[str]) -> list[str]:
    """Check that ``areas`` fit ``role`` and exist in the database; return them deduplicated."""
    if role not in USER_ROLES:
        raise IdentityError(f"unknown role {role!r}; expected one of {', '.join(USER_ROLES)}")
    areas = list(dict.fromkeys(a.strip() for a in areas))
    if role == "town":
        if len(areas) != 1 or not _TOWN.match(areas[0]):
            raise IdentityError("role town needs exactly one --area: a 9-digit town code")
        table = "towns"
    elif role == "grid":
        if not areas or not all(_GRID.match(a) for a in areas):
            raise IdentityError("role grid needs one or more --area: 15-digit grid codes")
        table = "grids"
    else:
        if areas:
            raise IdentityError(f"role {role} covers no particular area; leave out --area")
        return []
    found = set(conn.execute(
        text(f"SELECT code FROM pingan.{table} WHERE code = ANY(:codes)"),  # noqa: S608 - fixed name
        {"codes": areas},
    ).scalars())
    missing = [a for a in areas if a not in found]
    if missing:
        raise IdentityError(f"no such {table[:-1]} in the database: {', '.join(missing)}")
    return areas


def audit(conn: Connection, actor: Actor, action: str, object_type: str, object_id: str,
          details: dict | None = None) -> None:
    conn.execute(
        text(
            "INSERT INTO pingan.audit_log (actor, role, action, object_type, object_id, details) "
            "VALUES (:a, :r, :act, :ot, :oid, CAST(:d AS jsonb))"
        ),
        {"a": actor.name, "r": actor.role, "act": action, "ot": object_type, "oid": object_id,
         "d": json.dumps(details or {}, ensure_ascii=False)},
    )


def _user_id(conn: Connection, name: str) -> int:
    uid = conn.execute(text("SELECT id FROM pingan.users WHERE name = :n"), {"n": name}).scalar()
    if uid is None:
        raise IdentityError(f"no user {name!r}")
    return uid


def add_user(conn: Connection, actor: Actor, name: str, role: str, areas: list[str], password: str) -> int:
    validate_name(name)
    areas = validate_areas(conn, role, areas)
    pw_hash = hash_password(password)
    uid = conn.execute(
        text(
            "INSERT INTO pingan.users (name, role, areas, password_hash) VALUES (:n, :r, :a, :h) "
            "ON CONFLICT (name) DO NOTHING RETURNING id"
        ),
        {"n": name, "r": role, "a": areas, "h": pw_hash},
    ).scalar()
    if uid is None:
        raise IdentityError(f"user {name!r} exists already (use reset-password, enable or disable)")
    audit(conn, actor, "user.add", "user", name, {"role": role, "areas": areas})
    return uid


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    areas: list[str]
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    active_tokens: int
    locked_until: datetime | None


def list_users(conn: Connection) -> list[UserRow]:
    rows = conn.execute(text(
        "SELECT u.name, u.role, u.areas, u.disabled, u.created_at, u.last_login_at,"
        " (SELECT count(*) FROM pingan.api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL"
        "   AND t.expires_at > now()) AS active_tokens,"
        " (SELECT l.locked_until FROM pingan.login_throttle l WHERE l.scope = 'user' AND l.key = u.name"
        "   AND l.locked_until > now()) AS locked_until "
        "FROM pingan.users u ORDER BY u.name"
    )).all()
    return [UserRow(*r) for r in rows]


def set_disabled(conn: Connection, actor: Actor, name: str, disabled: bool) -> bool:
    """Disable (ending the user's sessions) or enable a user; False when nothing changed."""
    uid = _user_id(conn, name)
    changed = conn.execute(
        text("UPDATE pingan.users SET disabled = :d, updated_at = now() WHERE id = :i AND disabled <> :d"),
        {"d": disabled, "i": uid},
    ).rowcount
    ended = conn.execute(text("DELETE FROM pingan.sessions WHERE user_id = :i"), {"i": uid}).rowcount \
        if disabled else 0
    if changed:
        audit(conn, actor, "user.disable" if disabled else "user.enable", "user", name,
              {"sessions_ended": ended} if disabled else {})
    return bool(changed)


def reset_password(conn: Connection, actor: Actor, name: str, password: str) -> int:
    """Set a new password; end the user's sessions and lift a lock. Returns sessions ended."""
    pw_hash = hash_password(password)
    uid = _user_id(conn, name)
    conn.execute(text("UPDATE pingan.users SET password_hash = :h, updated_at = now() WHERE id = :i"),
                 {"h": pw_hash, "i": uid})
    ended = conn.execute(text("DELETE FROM pingan.sessions WHERE user_id = :i"), {"i": uid}).rowcount
    conn.execute(text("DELETE FROM pingan.login_throttle WHERE scope = 'user' AND key = :n"), {"n": name})
    audit(conn, actor, "user.reset_password", "user", name, {"sessions_ended": ended})
    return ended


def unlock(conn: Connection, actor: Actor, name: str) -> bool:
    """Lift a login lock on a user name (the address locks stay)."""
    n = conn.execute(text("DELETE FROM pingan.login_throttle WHERE scope = 'user' AND key = :n"),
                     {"n": name}).rowcount
    if n:
        audit(conn, actor, "user.unlock", "user", name)
    return bool(n)


@dataclass(frozen=True)
class NewToken:
    id: int
    user: str
    name: str
    token: str  # shown once, never stored
    expires_at: datetime


def create_token(conn: Connection, actor: Actor, user: str, name: str, days: int, max_days: int) -> NewToken:
    if not 1 <= days <= max_days:
        raise IdentityError(f"--expires-days must be between 1 and {max_days} (PINGAN_AUTH_TOKEN_MAX_DAYS)")
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise IdentityError("a token name needs 1-100 printable characters")
    uid = _user_id(conn, user)
    token = new_token()
    tid, expires = conn.execute(
        text(
            "INSERT INTO pingan.api_tokens (user_id, name, token_hash, expires_at) "
            "VALUES (:u, :n, :h, now() + make_interval(days => :d)) RETURNING id, expires_at"
        ),
        {"u": uid, "n": name, "h": digest(token), "d": days},
    ).one()
    audit(conn, actor, "token.create", "api_token", str(tid), {"user": user, "name": name, "days": days})
    return NewToken(tid, user, name, token, expires)


@dataclass(frozen=True)
class TokenRow:
    id: int
    user: str
    name: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    status: str


def list_tokens(conn: Connection, user: str | None = None) -> list[TokenRow]:
    rows = conn.execute(
        text(
            "SELECT t.id, u.name, t.name, t.created_at, t.expires_at, t.last_used_at,"
            " CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'"
            "      WHEN t.expires_at <= now() THEN 'expired' ELSE 'active' END "
            "FROM pingan.api_tokens t JOIN pingan.users u ON u.id = t.user_id "
            "WHERE CAST(:u AS text) IS NULL OR u.name = :u ORDER BY t.id"
        ),
        {"u": user},
    ).all()
    return [TokenRow(*r) for r in rows]


def revoke_token(conn: Connection, actor: Actor, token_id: int) -> bool:
    """Revoke a token; False when it was revoked already. Unknown ids are an error."""
    row = conn.execute(
        text("SELECT t.revoked_at IS NOT NULL, u.name, t.name FROM pingan.api_tokens t "
             "JOIN pingan.users u ON u.id = t.user_id WHERE t.id = :i FOR UPDATE OF t"),
        {"i": token_id},
    ).first()
    if row is None:
        raise IdentityError(f"no token with id {token_id}")
    if row[0]:
        return False
    conn.execute(text("UPDATE pingan.api_tokens SET revoked_at = now() WHERE id = :i"), {"i": token_id})
    audit(conn, actor, "token.revoke", "api_token", str(token_id), {"user": row[1], "name": row[2]})
    return True
