"""The index's explanations only for those who may see the persons behind them.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-25
"""

from layers.migrate import run_sql_file

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0029_index_explanations_by_jurisdiction.up.sql")


def downgrade() -> None:
    run_sql_file("0029_index_explanations_by_jurisdiction.down.sql")
