"""Data problems met while reading a hook call's data, stored with its audit row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hook_calls") as batch:
        batch.add_column(sa.Column("data_problems", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hook_calls") as batch:
        batch.drop_column("data_problems")
