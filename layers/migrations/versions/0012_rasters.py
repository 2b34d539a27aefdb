"""Raster products: kernel-density COGs (issue 7).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0012_rasters.up.sql")


def downgrade() -> None:
    run_sql_file("0012_rasters.down.sql")
