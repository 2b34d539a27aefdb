"""A dismissed job's rasters go with it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0019_job_retention.up.sql")


def downgrade() -> None:
    run_sql_file("0019_job_retention.down.sql")
