"""Alert versions remember their hazard (what residents act on: weather, earthquake, tsunami).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``alert_versions.hazard`` (NULL for versions stored before: weather advice, as they were sent)."""
    with op.batch_alter_table("alert_versions") as batch:
        batch.add_column(sa.Column("hazard", sa.String(16), nullable=True))


def downgrade() -> None:
    """Drop ``alert_versions.hazard``."""
    with op.batch_alter_table("alert_versions") as batch:
        batch.drop_column("hazard")
