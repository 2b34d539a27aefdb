"""The index's counted inputs as one matrix per month (pingan.index_inputs).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0020_register_months.up.sql")


def downgrade() -> None:
    run_sql_file("0020_register_months.down.sql")
