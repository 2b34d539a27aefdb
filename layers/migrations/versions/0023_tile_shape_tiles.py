"""Tile shapes list the tiles their source geometry intersects (tile_shape_tiles).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0023_tile_shape_tiles.up.sql")


def downgrade() -> None:
    run_sql_file("0023_tile_shape_tiles.down.sql")
