"""Cytokine profile page: the stored assessment behind each card's profile link.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("assessment_id", sa.String(64), nullable=False),
        sa.Column("hook_call_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_profiles"),
        sa.ForeignKeyConstraint(
            ["hook_call_id"],
            ["hook_calls.id"],
            name="fk_profiles_hook_call_id_hook_calls",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_profiles_hook_call_id", "profiles", ["hook_call_id"])
    op.create_index("ix_profiles_created_at", "profiles", ["created_at"])


def downgrade() -> None:
    op.drop_table("profiles")
