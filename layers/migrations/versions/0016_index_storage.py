"""Index scores stored compactly: contributions as arrays, weights and notes per month.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0016_index_storage.up.sql")


def downgrade() -> None:
    run_sql_file("0016_index_storage.down.sql")
