"""What triggered a hook call in the EHR (Epic's trigger action and criteria id), and the
display of an override reason (Epic's own reasons carry no code the service knows).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hook_calls") as batch:
        batch.add_column(sa.Column("trigger_action", sa.String(64), nullable=True))
        batch.add_column(sa.Column("criteria_id", sa.String(128), nullable=True))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("override_reason_display", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("override_reason_display")
    with op.batch_alter_table("hook_calls") as batch:
        batch.drop_column("criteria_id")
        batch.drop_column("trigger_action")
