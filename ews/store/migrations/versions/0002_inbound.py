"""Inbound messages: opt-outs, Tagana acknowledgements and reports arriving by WhatsApp.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``inbound_messages``."""
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider_sid", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sender_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=True),
        sa.Column("alert_version_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('opt-out', 'ack', 'report')", name="ck_inbound_messages_kind"),
        sa.ForeignKeyConstraint(
            ["alert_version_id"], ["alert_versions.id"], name="fk_inbound_messages_alert_version_id_alert_versions"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_messages"),
        sa.UniqueConstraint("provider_sid", name="uq_inbound_messages_provider_sid"),
    )
    op.create_index("ix_inbound_messages_sender_id", "inbound_messages", ["sender_id"])


def downgrade() -> None:
    """Drop ``inbound_messages``."""
    op.drop_index("ix_inbound_messages_sender_id", table_name="inbound_messages")
    op.drop_table("inbound_messages")
