"""Tile serving speed (issue 3).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0017_tile_speed.up.sql")


def downgrade() -> None:
    run_sql_file("0017_tile_speed.down.sql")
