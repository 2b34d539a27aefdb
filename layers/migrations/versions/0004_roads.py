"""Road network for pgRouting.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0004_roads.up.sql")


def downgrade() -> None:
    run_sql_file("0004_roads.down.sql")
