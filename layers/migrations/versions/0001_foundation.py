"""Foundation: administrative hierarchy, key sites, persons, hazards, cases, ETL provenance, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0001_foundation.up.sql")


def downgrade() -> None:
    run_sql_file("0001_foundation.down.sql")
