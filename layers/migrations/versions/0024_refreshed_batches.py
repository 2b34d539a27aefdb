"""A marker per load batch that the monthly statistics' refresh took (etl_batches.refreshed_at).

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-25
"""

from layers.migrate import run_sql_file

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0024_refreshed_batches.up.sql")


def downgrade() -> None:
    run_sql_file("0024_refreshed_batches.down.sql")
