"""Failed-login counters in the database, shared by every worker process.

Two scopes: the user name tried and the client address. ``max`` failures within the window
lock the key for ``lockout_seconds``; each further lock in a row doubles it (up to
``max_lockout_seconds``). A successful login clears the user name's counter (not the
address's: one good account must not reset an attacker's address).
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from api.auth.settings import AuthSettings

_LOCKED = (
    "SELECT max(locked_until) FROM pingan.login_throttle "
    "WHERE ((scope = 'user' AND key = %s) OR (scope = 'addr' AND key = %s)) AND locked_until > now()"
)

# One statement per key: count the failure (a new window when the last one is over or a lock
# has passed), and lock when the count reaches the limit, with the back-off.
_FAIL = """
INSERT INTO pingan.login_throttle AS t (scope, key, failures, window_start, updated_at)
VALUES (%(scope)s, %(key)s, 1, now(), now())
ON CONFLICT (scope, key) DO UPDATE SET
    failures = CASE WHEN t.window_start < now() - make_interval(secs => %(window)s)
                      OR t.locked_until <= now() THEN 1 ELSE t.failures + 1 END,
    window_start = CASE WHEN t.window_start < now() - make_interval(secs => %(window)s)
                          OR t.locked_until <= now() THEN now() ELSE t.window_start END,
    -- a lock that passed long ago (a day) no longer counts for the back-off
    lockouts = CASE WHEN t.locked_until < now() - interval '1 day' THEN 0 ELSE t.lockouts END,
    locked_until = CASE WHEN t.locked_until <= now() THEN NULL ELSE t.locked_until END,
    updated_at = now()
RETURNING failures, lockouts
"""

_LOCK = """
UPDATE pingan.login_throttle
SET locked_until = now() + make_interval(secs => least(%(base)s * power(2, lockouts), %(cap)s)),
    lockouts = lockouts + 1, failures = 0, window_start = now()
WHERE scope = %(scope)s AND key = %(key)s
RETURNING locked_until
"""


async def locked_until(conn: AsyncConnection, user: str, addr: str) -> datetime | None:
    """When the lock on this user name or address ends; None when neither is locked."""
    cur = await conn.execute(_LOCKED, (user, addr))
    row = await cur.fetchone()
    return row[0] if row else None


async def record_failure(
    conn: AsyncConnection, settings: AuthSettings, user: str, addr: str
) -> datetime | None:
    """Count a failed login for both keys; return when a lock it caused ends (or None)."""
    until = None
    for scope, key, limit in (("user", user, settings.max_failures_per_user),
                              ("addr", addr, settings.max_failures_per_address)):
        cur = await conn.execute(_FAIL, {"scope": scope, "key": key[:256],
                                         "window": settings.failure_window_seconds})
        failures, _ = await cur.fetchone()
        if failures >= limit:
            cur = await conn.execute(_LOCK, {"scope": scope, "key": key[:256],
                                             "base": settings.lockout_seconds,
                                             "cap": settings.max_lockout_seconds})
            (lock,) = await cur.fetchone()
            until = lock if until is None else max(until, lock)
    # Keep the table small: rows unused for two days and not locked are history.
    await conn.execute("DELETE FROM pingan.login_throttle WHERE updated_at < now() - interval '2 days' "
                       "AND (locked_until IS NULL OR locked_until < now())")
    return until


async def record_success(conn: AsyncConnection, user: str) -> None:
    await conn.execute("DELETE FROM pingan.login_throttle WHERE scope = 'user' AND key = %s", (user,))
