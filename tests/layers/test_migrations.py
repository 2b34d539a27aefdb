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


def test_0027_down_gives_coarse_records_a_grid_of_their_own_area(databases) -> None:
    """Downgrading 0027 gives each record without a grid one of its own village's grids (its
    town's, for a town-level one), the one its point is in, else the nearest; a village without
    grids stops the downgrade with a count instead of a NOT NULL error."""
    import psycopg
    import pytest

    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    try:
        with engine.begin() as c:
            for level, every in (("village", 5), ("town", 7), ("grid", 11)):
                c.execute(text(
                    "UPDATE pingan.hazards SET loc_method = 'geocoded', geocode_level = :l, "
                    "geocode_score = 0.5, "
                    "grid_code = CASE WHEN :l = 'grid' THEN grid_code END, "
                    "village_code = CASE WHEN :l <> 'town' THEN village_code END "
                    "WHERE id % :n = 0 AND geocode_level IS NULL"), {"l": level, "n": every})
            before = dict(c.execute(text("SELECT id, coalesce(village_code, town_code) FROM pingan.hazards "
                                         "WHERE geocode_level IN ('village', 'town')")).all())
            # a village with no grid of its own, and a record placed to it
            c.execute(text(
                "INSERT INTO pingan.villages (code, town_code, name, kind, population, households, geom, "
                "source, source_id) SELECT left(code, 9) || '999', left(code, 9), '无网格村', 'village', "
                "0, 0, "
                "geom, 'test', 'lone' "
                "FROM pingan.villages ORDER BY code LIMIT 1"))
            lone = c.execute(text(
                "UPDATE pingan.hazards SET loc_method = 'geocoded', geocode_level = 'village', "
                "geocode_score = 0.7, "
                "grid_code = NULL, village_code = left(town_code, 9) || '999' "
                "WHERE id = (SELECT min(id) FROM pingan.hazards WHERE town_code = "
                "(SELECT left(min(code), 9) FROM pingan.villages)) RETURNING id")).scalar_one()
        lone_message = "1 hazards placed to a village or town that has no grid"
        with pytest.raises(psycopg.errors.RaiseException, match=lone_message):
            migrate.downgrade(engine, "0026")
        with engine.begin() as c:
            c.execute(text("DELETE FROM pingan.hazard_events WHERE hazard_id = :i"), {"i": lone})
            c.execute(text("DELETE FROM pingan.hazards WHERE id = :i"), {"i": lone})
        migrate.downgrade(engine, "0026")
        with engine.connect() as c:
            after = dict(c.execute(text("SELECT id, grid_code FROM pingan.hazards WHERE id = ANY(:i)"),
                                   {"i": list(before)}).all())
            levels = dict(c.execute(text(
                "SELECT geocode_level, count(*) FROM pingan.hazards GROUP BY 1")).all())
        assert len(after) == len(before) > 0
        assert all(grid.startswith(area) for i, grid in after.items() for area in [before[i]])
        assert "grid" not in levels and levels["village"] > 0
        migrate.upgrade(engine)
    finally:
        engine.dispose()
