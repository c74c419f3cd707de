"""CAP area alerts: the partition of a region's alerts into kecamatan areas that a cycle published.

One CAP alert per thread, level and contiguous group of villages of one kecamatan (not one per village): the
store keeps each published area (its members, references and ``<sent>``) so that the next cycle links the
unchanged ones, references the ones it replaces, and renders a lost folder again to the same bytes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``cap_areas``."""
    op.create_table(
        "cap_areas",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sent", sa.DateTime(timezone=True), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("refs", sa.JSON(), nullable=False),
        sa.UniqueConstraint("identifier", name="uq_cap_areas_identifier"),
    )
    op.create_index("ix_cap_areas_region_live", "cap_areas", ["region", "live"])
    op.create_index("ix_cap_areas_region_digest", "cap_areas", ["region", "digest"])


def downgrade() -> None:
    """Drop ``cap_areas`` (the next cycle publishes its areas as new alerts)."""
    op.drop_index("ix_cap_areas_region_digest", table_name="cap_areas")
    op.drop_index("ix_cap_areas_region_live", table_name="cap_areas")
    op.drop_table("cap_areas")
