"""Warning identity by content: a content key, event code and language per warning, and the aliases of a warning.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``warnings.content_key``/``event_code`` and create ``warning_aliases``."""
    with op.batch_alter_table("warnings") as batch:
        batch.add_column(sa.Column("content_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("event_code", sa.String(64), nullable=True))
        batch.add_column(sa.Column("language", sa.String(16), nullable=True))
    op.create_index("ix_warnings_content_key", "warnings", ["content_key"])
    op.create_table(
        "warning_aliases",
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("canonical", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.CheckConstraint("reason IN ('re-served', 'edition')", name="ck_warning_aliases_reason"),
        sa.ForeignKeyConstraint(
            ["canonical"], ["warnings.identifier"], name="fk_warning_aliases_canonical_warnings", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("identifier", name="pk_warning_aliases"),
    )
    op.create_index("ix_warning_aliases_canonical", "warning_aliases", ["canonical"])


def downgrade() -> None:
    """Drop ``warning_aliases`` and the identity columns."""
    op.drop_index("ix_warning_aliases_canonical", table_name="warning_aliases")
    op.drop_table("warning_aliases")
    op.drop_index("ix_warnings_content_key", table_name="warnings")
    with op.batch_alter_table("warnings") as batch:
        batch.drop_column("language")
        batch.drop_column("event_code")
        batch.drop_column("content_key")
