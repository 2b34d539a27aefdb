"""Placeholder slot (etl_speed2).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0022_etl_speed2.up.sql")


def downgrade() -> None:
    run_sql_file("0022_etl_speed2.down.sql")
