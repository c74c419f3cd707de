"""Message texts stored once: a ledger row references the text its village's subscribers share.

A resident's message depends on their village's situation, language and channel, not on the person, so a
cycle renders each distinct text once, stores it once in ``message_texts`` (by its digest) and creates the
ledger rows of all subscribers of that village with one statement that references it (``send_ledger.text_id``).
A row with its own ``body`` (a person of several villages, a Tagana notice, a report's status) keeps it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``message_texts`` and ``send_ledger.text_id``."""
    op.create_table(
        "message_texts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fallback_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("digest", name="uq_message_texts_digest"),
    )
    with op.batch_alter_table("send_ledger") as batch:
        batch.add_column(sa.Column("text_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_send_ledger_text_id_message_texts", "message_texts", ["text_id"], ["id"])


def downgrade() -> None:
    """Drop what :func:`upgrade` added (rows that referenced a shared text get it back as their own)."""
    connection = op.get_bind()
    connection.execute(
        sa.text(
            "UPDATE send_ledger SET body = (SELECT t.body FROM message_texts t WHERE t.id = send_ledger.text_id), "
            "fallback_body = (SELECT t.fallback_body FROM message_texts t WHERE t.id = send_ledger.text_id) "
            "WHERE text_id IS NOT NULL"
        )
    )
    with op.batch_alter_table("send_ledger") as batch:
        batch.drop_constraint("fk_send_ledger_text_id_message_texts", type_="foreignkey")
        batch.drop_column("text_id")
    op.drop_table("message_texts")
