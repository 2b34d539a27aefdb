"""Resolving credentials to a :class:`~layers.db.Principal` (the service's hot path).

Every lookup is one indexed query on the async pool. HTTP Basic needs an argon2 verification
(tens of milliseconds of CPU), so successful verifications are remembered in process memory
for ``basic_cache_seconds``, keyed by an HMAC of the credentials under a per-process random
key; disabling a user or changing a password therefore reaches a worker within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.auth import throttle
from api.auth.credentials import csrf_token, digest, new_secret, verify_password
from api.auth.settings import AuthSettings
from layers.db import Principal

# Only write "last used" when the stored value is older than this: one write a minute at most
# per session or token, not one per tile.
_TOUCH_SECONDS = 60

class AuthFailure(Exception):  # noqa: N818 - reads better at the raise sites
    """Credentials were refused. ``locked_until`` is set when a lock refused them."""

    def __init__(self, reason: str, locked_until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


@dataclass(frozen=True)
class Login:
    principal: Principal
    session_id: str  # the cookie value; the database holds only its digest
    csrf_token: str
    expires_at: datetime


def inet_or_none(addr: str | None) -> str | None:
    """The client address as PostgreSQL ``inet`` accepts it (test clients send names)."""
    try:
        return str(ipaddress.ip_address(addr)) if addr else None
    except ValueError:
        return None


def throttle_key(addr: str | None) -> str:
    """The address key of the login limits: the address, or its /64 for IPv6 (one host usually
    holds a whole /64, so single addresses would cost an attacker nothing)."""
    try:
        ip = ipaddress.ip_address(addr or "")
    except ValueError:
        return (addr or "unknown")[:256]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _principal(name: str, role: str, areas: list[str] | None) -> Principal:
    return Principal(user=name, role=role, areas=tuple(areas or ()))


async def audit(conn: AsyncConnection, actor: str, role: str, action: str, addr: str | None,
                details: dict, object_type: str = "user", object_id: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO pingan.audit_log (actor, role, action, object_type, object_id, client_addr, details) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)",
        (actor, role, action, object_type, object_id or actor, inet_or_none(addr),
         json.dumps(details, ensure_ascii=False)),
    )


class BasicCache:
    """Successful Basic verifications for a short time; LRU-bounded."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl, self.size = ttl, size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def key(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, f"{user}\x00{password}".encode(), hashlib.sha256).digest()

    def get(self, user: str, password: str) -> Principal | None:
        return self.get_key(self.key(user, password))

    def get_key(self, k: bytes) -> Principal | None:
        if self.ttl <= 0:
            return None
        hit = self._entries.get(k)
        if hit is None:
            return None
        if hit[0] <= time.monotonic():
            del self._entries[k]
            return None
        return hit[1]

    def put(self, user: str, password: str, principal: Principal) -> None:
        self.put_key(self.key(user, password), principal)

    def put_key(self, k: bytes, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        self._entries[k] = (time.monotonic() + self.ttl, principal)
        self._entries.move_to_end(k)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop_key(self, k: bytes) -> None:
        self._entries.pop(k, None)

    def clear(self) -> None:
        self._entries.clear()


_USER = "SELECT id, role, areas, password_hash, disabled FROM pingan.users WHERE name = %s"

_BEARER_SQL = (
    "SELECT t.id, u.name, u.role, u.areas, t.last_used_at < now() - make_interval(secs => %s) "
    "FROM pingan.api_tokens t JOIN pingan.users u ON u.id = t.user_id "
    "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > now() AND NOT u.disabled"
)

_SESSION = (
    "SELECT u.name, u.role, u.areas, s.last_seen_at < now() - make_interval(secs => %s) "
    "FROM pingan.sessions s JOIN pingan.users u ON u.id = s.user_id "
    "WHERE s.id_hash = %s AND s.expires_at > now() "
    "AND s.last_seen_at > now() - make_interval(secs => %s) AND NOT u.disabled"
)


class Authenticator:
    """The service's side of identity: one per app (``app.state.auth``)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.basic_cache = BasicCache(settings.basic_cache_seconds, settings.basic_cache_size)
        # Bearer tokens and session cookies checked in the last few seconds: a map screen or a
        # script asks for dozens of tiles a second, each would otherwise cost a database round
        # trip before the tile cache is even looked at. Revocation, expiry and disabling take
        # effect within credential_cache_seconds (logout in this process at once).
        self.credential_cache = BasicCache(settings.credential_cache_seconds, settings.basic_cache_size)
        # Basic verifications under way, by credential: QGIS opens a layer with a burst of tile
        # requests carrying the same credentials; they share one argon2 verification (and count
        # as one failure when wrong) instead of running it once each.
        self._inflight: dict[bytes, asyncio.Future[Principal]] = {}

    # -- bearer tokens ------------------------------------------------------------------------
    async def bearer(self, pool: AsyncConnectionPool, token: str) -> Principal:
        if not token or len(token) > 256:
            raise AuthFailure("malformed token")
        key = b"bearer\x00" + digest(token)
        cached = self.credential_cache.get_key(key)
        if cached is not None:
            return cached
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_BEARER_SQL, (_TOUCH_SECONDS, digest(token)))
            row = await cur.fetchone()
            if row is None:
                raise AuthFailure("unknown, expired or revoked token, or disabled user")
            tid, name, role, areas, stale = row
            if stale is None or stale:
                await conn.execute("UPDATE pingan.api_tokens SET last_used_at = now() WHERE id = %s", (tid,))
        principal = _principal(name, role, areas)
        self.credential_cache.put_key(key, principal)
        return principal

    # -- sessions -----------------------------------------------------------------------------
    async def session(self, pool: AsyncConnectionPool, session_id: str) -> Principal:
        if not session_id or len(session_id) > 128:
            raise AuthFailure("malformed session")
        h = digest(session_id)
        cached = self.credential_cache.get_key(b"session\x00" + h)
        if cached is not None:
            return cached
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_SESSION, (_TOUCH_SECONDS, h, self.settings.session_idle_seconds))
            row = await cur.fetchone()
            if row is None:
                raise AuthFailure("no such session, or it expired")
            name, role, areas, stale = row
            if stale:
                await conn.execute("UPDATE pingan.sessions SET last_seen_at = now() WHERE id_hash = %s", (h,))
        principal = _principal(name, role, areas)
        self.credential_cache.put_key(b"session\x00" + h, principal)
        return principal

    async def logout(self, pool: AsyncConnectionPool, session_id: str, addr: str | None) -> bool:
        self.credential_cache.drop_key(b"session\x00" + digest(session_id))
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM pingan.sessions s USING pingan.users u "
                "WHERE s.id_hash = %s AND u.id = s.user_id RETURNING u.name, u.role",
                (digest(session_id),),
            )
            row = await cur.fetchone()
            if row:
                await audit(conn, row[0], row[1], "auth.logout", addr, {})
        return row is not None

    # -- passwords (login form, HTTP Basic) -----------------------------------------------------
    async def check_password(self, pool: AsyncConnectionPool, user: str, password: str, addr: str | None,
                             method: str) -> tuple[int, Principal]:
        """Verify a password under the login limits; audit failures. Raises AuthFailure."""
        user, addr_key = user[:256], throttle_key(addr)
        async with pool.connection() as conn, conn.transaction():
            until = await throttle.locked_until(conn, user, addr_key)
            # Refusals while locked are not audited one by one (a locked QGIS asks many times a
            # second): the failure that set the lock was, with its end.
            if until is not None:
                raise AuthFailure("locked", until)
            cur = await conn.execute(_USER, (user,))
            row = await cur.fetchone()
        # argon2 is CPU work: off the event loop (argon2-cffi releases the GIL) and without
        # holding a pooled connection
        ok = await asyncio.to_thread(verify_password, row[3] if row else None, password)
        async with pool.connection() as conn, conn.transaction():
            if ok and not row[4]:
                await throttle.record_success(conn, user)
                await conn.execute("UPDATE pingan.users SET last_login_at = now() WHERE id = %s", (row[0],))
                # Basic: once per credential per worker per basic_cache_seconds at most, however
                # many tiles QGIS asks for
                await audit(conn, user, row[1], "auth.login", addr, {"method": method})
                return row[0], _principal(user, row[1], row[2])
            until = await throttle.record_failure(conn, self.settings, user, addr_key)
            reason = "disabled" if ok else "wrong user name or password"
            await audit(conn, user or "-", row[1] if row else "unknown", "auth.login_failed", addr,
                        {"method": method, "reason": reason,
                         **({"locked_until": until.isoformat()} if until else {})})
        raise AuthFailure(reason, until)

    async def basic(self, pool: AsyncConnectionPool, user: str, password: str, addr: str | None) -> Principal:
        cached = self.basic_cache.get(user, password)
        if cached is not None:
            return cached
        k = self.basic_cache.key(user, password)
        task = self._inflight.get(k)
        if task is None:
            task = asyncio.ensure_future(self._verify_basic(pool, user, password, addr))
            self._inflight[k] = task
            task.add_done_callback(lambda _: self._inflight.pop(k, None))
        # shielded: one caller going away does not cancel the verification the others wait for
        return await asyncio.shield(task)

    async def _verify_basic(self, pool: AsyncConnectionPool, user: str, password: str,
                            addr: str | None) -> Principal:
        _, principal = await self.check_password(pool, user, password, addr, "basic")
        self.basic_cache.put(user, password, principal)
        return principal

    async def login(self, pool: AsyncConnectionPool, user: str, password: str, addr: str | None,
                    user_agent: str | None) -> Login:
        """The login form: verify, then open a server-side session."""
        uid, principal = await self.check_password(pool, user, password, addr, "form")
        sid = new_secret()
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO pingan.sessions (id_hash, user_id, expires_at, client_addr, user_agent) "
                "VALUES (%s, %s, now() + make_interval(secs => %s), %s, %s) RETURNING expires_at",
                (digest(sid), uid, self.settings.session_lifetime_seconds, inet_or_none(addr),
                 (user_agent or "")[:256] or None),
            )
            (expires_at,) = await cur.fetchone()
            # expired sessions are history; the index on expires_at makes this cheap
            await conn.execute("DELETE FROM pingan.sessions WHERE expires_at < now() - interval '1 day'")
        return Login(principal, sid, csrf_token(sid), expires_at)
