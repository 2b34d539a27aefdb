"""Accountability ladder evidence and documents (issue 6).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0014_ladder_evidence.up.sql")


def downgrade() -> None:
    run_sql_file("0014_ladder_evidence.down.sql")
