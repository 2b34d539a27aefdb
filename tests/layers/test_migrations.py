"""Migrations up and down on a fresh database; models agree with what the migrations build."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from layers import migrate
from layers.db import make_engine
from layers.models import Base
from layers.settings import DatabaseSettings


def test_upgrade_downgrade_round_trip(databases) -> None:
    engine = make_engine(DatabaseSettings(database_url=databases.create()))
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        tables = set(inspect(engine).get_table_names(schema="pingan"))
        assert set(Base.metadata.tables) == {f"pingan.{t}" for t in tables}

        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        with engine.connect() as conn:
            assert conn.execute(
                text("SELECT count(*) FROM pg_namespace WHERE nspname = 'pingan'")
            ).scalar_one() == 0

        migrate.upgrade(engine)  # and up again from nothing
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def _relevant(diff: object) -> bool:
    # PostGIS's own tables (spatial_ref_sys, topology) live outside our schema.
    text_ = repr(diff)
    return not any(k in text_ for k in ("spatial_ref_sys", "'topology'", "alembic_version"))


def test_models_match_migrated_schema(engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: (
                    name == "pingan" if type_ == "schema" else True
                ),
                "compare_type": True,
            },
        )
        diffs = [d for d in compare_metadata(ctx, Base.metadata) if _relevant(d)]
    assert diffs == []
