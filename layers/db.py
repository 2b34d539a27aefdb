"""Engines, connections and the per-transaction caller context.

Every transaction that serves a caller starts by stating who the caller is: role, user name and
jurisdiction (area codes). They are transaction-local PostgreSQL settings (``set_config(...,
true)``), so they vanish at COMMIT/ROLLBACK and a pooled connection never carries one caller's
identity into the next transaction. Row-level-security policies read them through
``pingan.ctx_role()``, ``pingan.ctx_user()`` and ``pingan.ctx_areas()``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from psycopg import AsyncConnection
from psycopg import sql as psql
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from layers.settings import DatabaseSettings

ROLES = ("admin", "command", "town", "grid", "analyst", "public", "system")
_AREA_CODE = re.compile(r"^[0-9]{6,15}$")


def sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the psycopg (v3) driver that the project uses."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """Return ``url`` as a plain ``postgresql://`` URL that psql and libpq accept."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def make_engine(settings: DatabaseSettings, *, service: bool = False) -> Engine:
    """Create the engine; the caller owns and disposes it. With ``service``, every new
    connection is checked to be bound by row-level security (:class:`InsecureRoleError`)."""
    engine = create_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=settings.pool_size,
        pool_pre_ping=True,
        connect_args={
            # search_path=public: every statement names schema "pingan" itself; keeping it off
            # the path (it would be there as "$user" for role pingan) makes reflection and
            # unqualified names behave the same for every role.
            "options": f"-c statement_timeout={settings.statement_timeout_ms} -c search_path=public",
            "application_name": "pingan",
        },
    )
    if service:
        event.listen(engine, "connect", _check_dbapi_connection)
    return engine


def make_async_pool(
    settings: DatabaseSettings, *, min_size: int = 2, service: bool = False
) -> AsyncConnectionPool:
    """An asyncio pool of psycopg connections for hot paths (tiles, item pages).

    Created closed: the caller opens it (``await pool.open()``) in its lifespan and closes it.

    Statements are never prepared (``prepare_threshold=None``): psycopg prepares a query at its
    5th run on a connection, after which PostgreSQL may switch to a generic plan that cannot see
    the bbox. Measured at demo scale 10 (docs/performance.md): item pages 8.7/s prepared, 112/s
    with custom plans; tiles unchanged either way.
    """
    return AsyncConnectionPool(
        libpq_url(settings.database_url),
        min_size=min_size,
        max_size=settings.pool_size,
        open=False,
        configure=_check_async_connection if service else None,
        kwargs={
            "options": f"-c statement_timeout={settings.statement_timeout_ms} -c search_path=public",
            "application_name": "pingan",
            "autocommit": False,
            "prepare_threshold": None,
        },
    )


class InsecureRoleError(RuntimeError):
    """The service was given a database role that row-level security does not bind."""


# Owner of the tables (once migrated) or of the database (before): either way not subject to RLS.
_ROLE_CHECK = (
    "SELECT current_user, r.rolsuper, r.rolbypassrls,"
    " pg_has_role(current_user, coalesce((SELECT relowner FROM pg_class"
    "  WHERE oid = to_regclass('pingan.persons')), d.datdba), 'MEMBER')"
    " FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()"
)


def _check_role_row(row: tuple) -> None:
    user, superuser, bypass, owner = row
    why = [w for w, bad in (("a superuser", superuser), ("BYPASSRLS", bypass),
                            ("the owner of the tables", owner)) if bad]
    if why:
        raise InsecureRoleError(
            f"database role {user!r} is {' and '.join(why)}: row-level security would not bind "
            "it. Connect the service as its own role (pingan_service; PINGAN_SERVICE_DATABASE_URL)."
        )


def check_service_role(engine: Engine) -> None:
    """Refuse a role that could bypass row-level security: a superuser, a role with BYPASSRLS,
    or a member of the role owning the tables (owners are not subject to their policies)."""
    with engine.connect() as conn:
        _check_role_row(tuple(conn.execute(text(_ROLE_CHECK)).one()))


def _check_dbapi_connection(dbapi_conn, _record) -> None:  # noqa: ANN001 - SQLAlchemy event
    with dbapi_conn.cursor() as cur:
        cur.execute(_ROLE_CHECK)
        row = cur.fetchone()
    dbapi_conn.rollback()
    _check_role_row(row)


async def _check_async_connection(conn: AsyncConnection) -> None:
    cur = await conn.execute(_ROLE_CHECK)
    row = await cur.fetchone()
    await conn.rollback()
    _check_role_row(row)


@dataclass(frozen=True)
class Principal:
    """Who a transaction acts for.

    ``areas`` are the statistical codes of the caller's jurisdiction: empty for district-wide
    roles, one town code for ``town``, grid codes for ``grid``.
    """

    user: str
    role: str
    areas: tuple[str, ...] = field(default=())
    # where the request came from and why (the audit log records both); not part of identity
    client: str | None = field(default=None, compare=False)
    reason: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")
        bad = [a for a in self.areas if not _AREA_CODE.match(a)]
        if bad:
            raise ValueError(f"area codes must be 6-15 digits, got {bad}")
        if self.role in ("town", "grid") and not self.areas:
            raise ValueError(f"role {self.role!r} needs at least one area code")


SYSTEM = Principal(user="system", role="system")


# Transaction-local: the caller's settings, and for the web service (a member of the access
# roles) SET LOCAL ROLE to the caller's access role (layers/migrations/sql/0005_access.up.sql).
# The owner (ETL, CLI, tests) is no member: it keeps its own role and only states the caller.
_SET_PRINCIPAL = (
    "SELECT set_config('pingan.user', %(user)s, true), set_config('pingan.role', %(role)s, true),"
    " set_config('pingan.areas', %(areas)s, true),"
    " CASE WHEN pg_has_role(session_user, r.oid, 'MEMBER') THEN set_config('role', r.rolname, true) END"
    " FROM (SELECT 1) AS one LEFT JOIN pg_roles r ON r.rolname = 'pingan_as_' || %(role)s"
)


def _principal_params(principal: Principal) -> dict[str, str]:
    return {"user": principal.user, "role": principal.role, "areas": ",".join(principal.areas)}


_PRINCIPAL_ARGS = ("user", "role", "areas")


def prepare_principal_sql(name: str, *also: str) -> str:
    """``PREPARE name`` as the statement stating a principal, its user, role and areas the three
    text parameters (run it with :func:`execute_principal_sql`), with the select-list items
    ``also`` after it. For a connection that states callers many times (``tiles.render``):
    planning the statement anew for each one costs more than running it."""
    select, rest = _SET_PRINCIPAL.split(" FROM ", 1)
    statement = "".join([select, *(f", {item}" for item in also), " FROM ", rest])
    placeholders = {arg: f"${i}" for i, arg in enumerate(_PRINCIPAL_ARGS, 1)}
    return f"PREPARE {name}(text, text, text) AS {statement % placeholders}"


def principal_args(principal: Principal) -> tuple[str, ...]:
    """The parameters of :func:`prepare_principal_sql`'s statement for ``principal``, in order
    (for a driver that binds them rather than quoting them in)."""
    params = _principal_params(principal)
    return tuple(params[arg] for arg in _PRINCIPAL_ARGS)


def execute_principal_sql(name: str, principal: Principal) -> str:
    """``EXECUTE name(...)`` of :func:`prepare_principal_sql` for ``principal``, values quoted in."""
    params = _principal_params(principal)
    args = psql.SQL(", ").join(psql.Literal(params[arg]) for arg in _PRINCIPAL_ARGS)
    return psql.SQL("EXECUTE {}({})").format(psql.Identifier(name), args).as_string(None)


def set_principal(conn: Connection, principal: Principal) -> None:
    """State the caller for the current transaction (transaction-local settings and role)."""
    conn.exec_driver_sql(_SET_PRINCIPAL, _principal_params(principal))


@asynccontextmanager
async def atransaction(pool: AsyncConnectionPool, principal: Principal) -> AsyncIterator[AsyncConnection]:
    """Async twin of :func:`transaction`: a pooled connection in a transaction for ``principal``."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(_SET_PRINCIPAL, _principal_params(principal))
        yield conn


@contextmanager
def transaction(engine: Engine, principal: Principal) -> Iterator[Connection]:
    """Open a transaction acting for ``principal``; commit on success, roll back on error."""
    with engine.begin() as conn:
        set_principal(conn, principal)
        yield conn
