"""The index computed through the service (process index-compute) by district-wide roles.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0015_index_service.up.sql")


def downgrade() -> None:
    run_sql_file("0015_index_service.down.sql")
