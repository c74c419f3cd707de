"""Initial schema: warnings, village states, alert versions, contacts, send ledger, deliveries, run log.

Revision ID: 0001
Revises:
Create Date: 2026-09-25

Self-contained on purpose (no import of ews.store.models): a revision must keep creating the same tables
when the models move on. ``DateTime(timezone=True)`` is what ``ews.store.models.UtcDateTime`` renders to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the ten ews tables."""
    op.create_table(
        "source_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        _time("received_at"),
        sa.PrimaryKeyConstraint("id", name="pk_source_documents"),
        sa.UniqueConstraint("identifier", "content_hash", name="uq_source_documents_identifier_content_hash"),
    )
    op.create_table(
        "warnings",
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=False),
        sa.Column("sender", sa.String(255), nullable=False),
        _time("sent"),
        sa.Column("msg_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("urgency", sa.String(32), nullable=False),
        sa.Column("certainty", sa.String(32), nullable=False),
        _time("effective", nullable=True),
        _time("expires", nullable=True),
        sa.Column("geometry_wkt", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("identifier", name="pk_warnings"),
    )
    op.create_index("ix_warnings_thread_id", "warnings", ["thread_id"])
    op.create_table(
        "village_states",
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("village_code", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("warning_id", sa.String(255), nullable=False),
        _time("warning_sent"),
        _time("expires", nullable=True),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("region", "village_code", "thread_id", name="pk_village_states"),
    )
    op.create_table(
        "alert_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(255), nullable=False),
        sa.Column("village_code", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("transition", sa.String(32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("level_before", sa.Integer(), nullable=False),
        sa.Column("warning_id", sa.String(255), nullable=False),
        sa.Column("cap_identifier", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exercise", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _time("created_at"),
        sa.Column("decided_by", sa.String(255), nullable=True),
        _time("decided_at", nullable=True),
        sa.CheckConstraint("status IN ('auto', 'pending', 'approved', 'rejected')", name="ck_alert_versions_status"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_versions"),
        sa.UniqueConstraint("cap_identifier", name="uq_alert_versions_cap_identifier"),
        sa.UniqueConstraint(
            "region", "thread_id", "village_code", "seq", name="uq_alert_versions_region_thread_id_village_code_seq"
        ),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone_e164", sa.String(20), nullable=False),
        sa.Column("village_code", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("consent_source", sa.Text(), nullable=False),
        _time("consent_time"),
        _time("opted_out_at", nullable=True),
        sa.Column("opt_out_source", sa.Text(), nullable=True),
        _time("created_at"),
        sa.CheckConstraint("channel IN ('sms', 'whatsapp')", name="ck_subscribers_channel"),
        sa.CheckConstraint("language IN ('id', 'en')", name="ck_subscribers_language"),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint(
            "phone_e164", "village_code", "channel", name="uq_subscribers_phone_e164_village_code_channel"
        ),
    )
    op.create_index("ix_subscribers_phone_e164", "subscribers", ["phone_e164"])
    op.create_table(
        "tagana_units",
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kabkota_code", sa.String(16), nullable=False),
        sa.Column("kecamatan_codes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", name="pk_tagana_units"),
    )
    op.create_table(
        "tagana_coordinators",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone_e164", sa.String(20), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.CheckConstraint("channel IN ('sms', 'whatsapp')", name="ck_tagana_coordinators_channel"),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["tagana_units.unit_id"],
            name="fk_tagana_coordinators_unit_id_tagana_units",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tagana_coordinators"),
    )
    op.create_index("ix_tagana_coordinators_unit_id", "tagana_coordinators", ["unit_id"])
    op.create_table(
        "send_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_version_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        _time("created_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("address", sa.String(32), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("fallback_body", sa.Text(), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        _time("valid_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("next_attempt_at", nullable=True),
        _time("claimed_at", nullable=True),
        sa.Column("worker", sa.String(64), nullable=True),
        sa.Column("provider_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("grouped_into", sa.Integer(), nullable=True),
        sa.CheckConstraint("audience IN ('resident', 'tagana', 'exercise')", name="ck_send_ledger_audience"),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'expired', 'dry-run')", name="ck_send_ledger_status"
        ),
        sa.ForeignKeyConstraint(
            ["alert_version_id"], ["alert_versions.id"], name="fk_send_ledger_alert_version_id_alert_versions"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_send_ledger"),
        sa.UniqueConstraint(
            "alert_version_id", "recipient_id", "channel", name="uq_send_ledger_alert_version_id_recipient_id_channel"
        ),
    )
    op.create_index("ix_send_ledger_status_priority_id", "send_ledger", ["status", "priority", "id"])
    op.create_index("ix_send_ledger_grouped_into", "send_ledger", ["grouped_into"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ledger_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _time("updated_at"),
        sa.ForeignKeyConstraint(["ledger_id"], ["send_ledger.id"], name="fk_deliveries_ledger_id_send_ledger"),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_ledger_id", "deliveries", ["ledger_id"])
    op.create_table(
        "run_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        _time("started_at"),
        _time("finished_at", nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_log"),
    )


def downgrade() -> None:
    """Drop every ews table (children first)."""
    for table in (
        "run_log",
        "deliveries",
        "send_ledger",
        "tagana_coordinators",
        "tagana_units",
        "subscribers",
        "alert_versions",
        "village_states",
        "warnings",
        "source_documents",
    ):
        op.drop_table(table)
