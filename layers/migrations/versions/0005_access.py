"""Access control: the service role, row-level security, person aggregates.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_access.up.sql")


def downgrade() -> None:
    run_sql_file("0005_access.down.sql")
