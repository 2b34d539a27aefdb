"""OGC API - Processes jobs and analysis inputs (issue 7).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0011_jobs.up.sql")


def downgrade() -> None:
    run_sql_file("0011_jobs.down.sql")
