"""Tile shapes: polygon geometry prepared per zoom (issue 3).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_tile_shapes.up.sql")


def downgrade() -> None:
    run_sql_file("0008_tile_shapes.down.sql")
