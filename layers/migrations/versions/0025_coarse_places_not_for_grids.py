"""Grid workers do not see records placed only to a village or town (their grid is that area's point's).

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-25
"""

from layers.migrate import run_sql_file

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0025_coarse_places_not_for_grids.up.sql")


def downgrade() -> None:
    run_sql_file("0025_coarse_places_not_for_grids.down.sql")
