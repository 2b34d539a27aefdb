"""ETL loading speed (issue 5).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0018_etl_speed.up.sql")


def downgrade() -> None:
    run_sql_file("0018_etl_speed.down.sql")
