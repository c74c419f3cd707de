"""National scale: the indexes a cycle's look-ups need, subscribers' pseudonymous ids, contact files' digests.

- ``subscribers.village_code`` is indexed (a cycle reads the subscribers of its alerted villages);
- ``subscribers.recipient_id`` keeps the pseudonymous id of the number (:func:`ews.contacts.recipient_id`), so a
  cycle does not hash a million numbers again; filled in here for the rows stored before;
- ``alert_versions (region, village_code)`` is indexed (who heard a village's alert, across its threads), and
  ``send_ledger (recipient_id, channel)`` (a person's earlier messages, which a newer one supersedes);
- ``contact_files`` records the digest of each region's contact file last imported, so an unchanged file is not
  imported again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the indexes, ``subscribers.recipient_id`` (filled in) and ``contact_files``."""
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("recipient_id", sa.String(40), nullable=True))
    connection = op.get_bind()
    subscribers = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("phone_e164", sa.String),
                           sa.column("recipient_id", sa.String))  # fmt: skip
    rows = connection.execute(sa.select(subscribers.c.id, subscribers.c.phone_e164)).all()
    if rows:
        connection.execute(
            subscribers.update().where(subscribers.c.id == sa.bindparam("row_id")),
            # the same digest as ews.contacts.recipient_id (kept here: a migration does not change with the code)
            [{"row_id": i, "recipient_id": "r-" + hashlib.sha256(p.encode()).hexdigest()[:16]} for i, p in rows],
        )
    op.create_index("ix_subscribers_village_code", "subscribers", ["village_code"])
    op.create_index("ix_subscribers_recipient_id", "subscribers", ["recipient_id"])
    op.create_index("ix_alert_versions_region_village", "alert_versions", ["region", "village_code"])
    op.create_index("ix_send_ledger_recipient_channel", "send_ledger", ["recipient_id", "channel"])
    op.create_table(
        "contact_files",
        sa.Column("region", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_table("contact_files")
    op.drop_index("ix_send_ledger_recipient_channel", "send_ledger")
    op.drop_index("ix_alert_versions_region_village", "alert_versions")
    op.drop_index("ix_subscribers_recipient_id", "subscribers")
    op.drop_index("ix_subscribers_village_code", "subscribers")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("recipient_id")
