"""Identity: users, sessions, API tokens, login throttling.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from layers.migrate import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0006_identity.up.sql")


def downgrade() -> None:
    run_sql_file("0006_identity.down.sql")
