"""Audit trail: hook calls, served cards, clinician feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hook_calls",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("hook_instance", sa.String(255), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_iss", sa.Text()),
        sa.Column("client_tenant", sa.Text()),
        sa.Column("patient_key", sa.String(64)),
        sa.Column("rules_version", sa.String(128)),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hook_calls"),
    )
    op.create_index("ix_hook_calls_called_at", "hook_calls", ["called_at"])
    op.create_index("ix_hook_calls_hook_instance", "hook_calls", ["hook_instance"])

    op.create_table(
        "cards",
        sa.Column("uuid", sa.String(128), nullable=False),
        sa.Column("hook_call_id", Id, nullable=False),
        sa.Column("topic_system", sa.Text()),
        sa.Column("topic_code", sa.String(128)),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("suggestion_uuids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_cards"),
        sa.ForeignKeyConstraint(
            ["hook_call_id"],
            ["hook_calls.id"],
            name="fk_cards_hook_call_id_hook_calls",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_cards_hook_call_id", "cards", ["hook_call_id"])
    op.create_index("ix_cards_topic_code", "cards", ["topic_code"])

    op.create_table(
        "feedback",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("orphan", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_reason_system", sa.Text()),
        sa.Column("override_reason_code", sa.Text()),
        sa.Column("override_comment", sa.Text()),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_iss", sa.Text()),
        sa.Column("client_tenant", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("dedupe_key", name="uq_feedback_dedupe_key"),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("cards")
    op.drop_table("hook_calls")
