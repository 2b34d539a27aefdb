"""Five-loss persons counted per town too, and small counts protected against subtraction.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-25
"""

from layers.migrate import run_sql_file

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0028_person_counts_protected.up.sql")


def downgrade() -> None:
    run_sql_file("0028_person_counts_protected.down.sql")
