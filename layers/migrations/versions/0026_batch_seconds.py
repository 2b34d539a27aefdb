"""A load batch records when its reading began and the seconds of its stages (etl_batches.seconds).

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-25
"""

from layers.migrate import run_sql_file

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0026_batch_seconds.up.sql")


def downgrade() -> None:
    run_sql_file("0026_batch_seconds.down.sql")
