"""Monthly hot spots: Gi* with FDR on hexagons per event layer (issue 7).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_hotspots.up.sql")


def downgrade() -> None:
    run_sql_file("0010_hotspots.down.sql")
