"""The safety governance index: models, scores, ladder, stars, survey (issue 6).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_index.up.sql")


def downgrade() -> None:
    run_sql_file("0007_index.down.sql")
