"""A record placed only to a village or town has no grid (a town-level one no village); level grid.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-25
"""

from layers.migrate import run_sql_file

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0027_coarse_places_have_no_grid.up.sql")


def downgrade() -> None:
    run_sql_file("0027_coarse_places_have_no_grid.down.sql")
