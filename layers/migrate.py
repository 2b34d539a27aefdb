"""Schema migrations (Alembic), callable from the CLI, the API and tests.

The DDL lives in plain SQL files next to the revisions (``migrations/sql``): constraints,
triggers and policies read best as SQL, and a reviewer sees exactly what the database enforces.
"""

from __future__ import annotations

from importlib import resources

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "layers:migrations")
    return cfg


def run_sql_file(name: str) -> None:
    """Execute one SQL file of ``migrations/sql`` inside the running migration.

    The SQL goes to psycopg directly, not through SQLAlchemy's ``text()``, so that ``:name``
    and ``%`` inside PL/pgSQL bodies are never taken for bind parameters.
    """
    sql = resources.files("layers.migrations").joinpath("sql", name).read_text(encoding="utf-8")
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest)."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the database back to ``revision`` (default: before the first migration)."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head
