"""Patrol plans: plans, routes per team, stops per plan (issue 9).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_patrol.up.sql")


def downgrade() -> None:
    run_sql_file("0009_patrol.down.sql")
