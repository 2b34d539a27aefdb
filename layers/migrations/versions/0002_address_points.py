"""Standard addresses (标准地址) for door-level offline geocoding.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0002_address_points.up.sql")


def downgrade() -> None:
    run_sql_file("0002_address_points.down.sql")
