"""Monthly aggregates per grid, village and town; refresh bookkeeping.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0003_monthly_stats.up.sql")


def downgrade() -> None:
    run_sql_file("0003_monthly_stats.down.sql")
