"""Alert versions keep the facts their messages state (an earthquake's magnitude, depth, epicentre, tsunami word).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``alert_versions.facts`` (JSON; NULL for versions without any, and for those stored before)."""
    with op.batch_alter_table("alert_versions") as batch:
        batch.add_column(sa.Column("facts", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop ``alert_versions.facts``."""
    with op.batch_alter_table("alert_versions") as batch:
        batch.drop_column("facts")
