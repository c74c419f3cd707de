"""Send ledger: fencing tokens, sending episodes, unknown outcomes ('unsure') and the provider's status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('queued', 'sending', 'sent', 'failed', 'expired', 'dry-run')"
NEW = "status IN ('queued', 'sending', 'unsure', 'sent', 'failed', 'expired', 'dry-run')"


def upgrade() -> None:
    """Add ``lease_version``, ``leased_at``, ``settle_after``, ``provider_status``; allow status 'unsure'."""
    with op.batch_alter_table("send_ledger") as batch:
        batch.add_column(sa.Column("lease_version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("leased_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("settle_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("provider_status", sa.String(32), nullable=True))
        batch.drop_constraint("ck_send_ledger_status", type_="check")
        batch.create_check_constraint("ck_send_ledger_status", NEW)
    # Rows being sent when the upgrade ran started their episode when they were claimed.
    op.execute("UPDATE send_ledger SET leased_at = claimed_at WHERE status = 'sending'")


def downgrade() -> None:
    """Drop the columns; 'unsure' rows go back to 'sending' (the old dispatcher reconciles them)."""
    op.execute("UPDATE send_ledger SET status = 'sending', claimed_at = leased_at WHERE status = 'unsure'")
    with op.batch_alter_table("send_ledger") as batch:
        batch.drop_constraint("ck_send_ledger_status", type_="check")
        batch.create_check_constraint("ck_send_ledger_status", OLD)
        batch.drop_column("provider_status")
        batch.drop_column("settle_after")
        batch.drop_column("leased_at")
        batch.drop_column("lease_version")
