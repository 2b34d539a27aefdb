"""Saved patrol plans as a layer (issue 9).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0013_patrol_layer.up.sql")


def downgrade() -> None:
    run_sql_file("0013_patrol_layer.down.sql")
