"""Tile speed, second pass (issue 3): no schema change (``SELECT 1``).

The slot was kept for storing the prepared shapes' properties as text columns instead of jsonb;
measured on bench_s1/bench_s10 (docs/performance.md, "Tiles, fifth run") it saved nothing, so
the store stays as migration 0008 made it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0021_tile_speed2.up.sql")


def downgrade() -> None:
    run_sql_file("0021_tile_speed2.down.sql")
