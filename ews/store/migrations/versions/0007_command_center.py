"""The command center: Tagana mobilisations, reports and reporters, users, web sessions, login attempts, audit log.

The send ledger also carries messages about no alert version (a report's status, told to its reporter:
``alert_version_id`` NULL, audience ``reporter``) and several messages of one version to one person when each
has its own ``topic`` (a Tagana escalation page per mobilisation step and round). Tagana contacts get their
escalation ``step`` and ``role``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_AUDIENCE = "audience IN ('resident', 'tagana', 'exercise')"
NEW_AUDIENCE = "audience IN ('resident', 'tagana', 'exercise', 'reporter')"
NEW_TABLES = (
    "report_events", "mobilisation_events", "web_sessions", "mobilisations", "users", "reports", "reporters",
    "login_attempts", "audit_log",
)  # fmt: skip  # in the order they are dropped


def upgrade() -> None:
    """Create the command center's tables; widen the send ledger (topic, unversioned rows); Tagana steps."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_key_at", "login_attempts", ["key", "at"], unique=False)
    op.create_table(
        "reporters",
        sa.Column("reporter_id", sa.String(length=40), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("language IN ('id', 'en')", name=op.f("ck_reporters_language")),
        sa.PrimaryKeyConstraint("reporter_id", name=op.f("pk_reporters")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=128), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("reporter_id", sa.String(length=40), nullable=True),
        sa.Column("reporter_label", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("matched", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=True),
        sa.Column("located_by", sa.String(length=16), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("thread_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("source IN ('whatsapp', 'sms', 'operator', 'agency')", name=op.f("ck_reports_source")),
        sa.CheckConstraint(
            "status IN ('received', 'routed', 'in-progress', 'resolved')", name=op.f("ck_reports_status")
        ),
        sa.ForeignKeyConstraint(["duplicate_of"], ["reports.id"], name=op.f("fk_reports_duplicate_of_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("source", "source_ref", name=op.f("uq_reports_source_source_ref")),
    )
    op.create_index(op.f("ix_reports_dedup_key"), "reports", ["dedup_key"], unique=False)
    op.create_index(op.f("ix_reports_reporter_id"), "reports", ["reporter_id"], unique=False)
    op.create_index("ix_reports_status_deadline", "reports", ["status", "deadline_at"], unique=False)
    op.create_index(op.f("ix_reports_village_code"), "reports", ["village_code"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("language IN ('id', 'en')", name=op.f("ck_users_language")),
        sa.CheckConstraint("role IN ('viewer', 'operator', 'analyst', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "mobilisations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("unit_name", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("acked_level", sa.Integer(), nullable=True),
        sa.Column("villages", sa.JSON(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("round_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alert_version_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mobilised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'mobilised', 'stood-down')", name=op.f("ck_mobilisations_status")
        ),
        sa.ForeignKeyConstraint(
            ["alert_version_id"], ["alert_versions.id"], name=op.f("fk_mobilisations_alert_version_id_alert_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mobilisations")),
        sa.UniqueConstraint("unit_id", "thread_id", name=op.f("uq_mobilisations_unit_id_thread_id")),
    )
    op.create_index("ix_mobilisations_status_region", "mobilisations", ["status", "region"], unique=False)
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)
    op.create_table(
        "mobilisation_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mobilisation_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("recipient_id", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("ledger_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('opened', 'page', 'ack', 'mobilised', 'renotify', 'update', 'stand-down')",
            name=op.f("ck_mobilisation_events_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_id"], ["send_ledger.id"], name=op.f("fk_mobilisation_events_ledger_id_send_ledger")
        ),
        sa.ForeignKeyConstraint(
            ["mobilisation_id"],
            ["mobilisations.id"],
            name=op.f("fk_mobilisation_events_mobilisation_id_mobilisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mobilisation_events")),
    )
    op.create_index(
        op.f("ix_mobilisation_events_mobilisation_id"), "mobilisation_events", ["mobilisation_id"], unique=False
    )
    op.create_index(
        "uq_mobilisation_events_page",
        "mobilisation_events",
        ["mobilisation_id", "kind", "round", "step", "recipient_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'page'"),
        postgresql_where=sa.text("kind = 'page'"),
    )
    op.create_table(
        "report_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("ledger_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["ledger_id"], ["send_ledger.id"], name=op.f("fk_report_events_ledger_id_send_ledger")),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_report_events_report_id_reports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_events")),
    )
    op.create_index(op.f("ix_report_events_report_id"), "report_events", ["report_id"], unique=False)
    with op.batch_alter_table("send_ledger") as batch:
        batch.add_column(sa.Column("topic", sa.String(96), server_default="", nullable=False))
        batch.alter_column("alert_version_id", existing_type=sa.Integer(), nullable=True)
        batch.drop_constraint("uq_send_ledger_alert_version_id_recipient_id_channel", type_="unique")
        batch.create_unique_constraint(
            "uq_send_ledger_alert_version_id_recipient_id_channel_topic",
            ["alert_version_id", "recipient_id", "channel", "topic"],
        )
        batch.drop_constraint("ck_send_ledger_audience", type_="check")
        batch.create_check_constraint("ck_send_ledger_audience", NEW_AUDIENCE)
    op.create_index(
        "uq_send_ledger_unversioned_topic", "send_ledger", ["recipient_id", "channel", "topic"], unique=True,
        sqlite_where=sa.text("alert_version_id IS NULL"), postgresql_where=sa.text("alert_version_id IS NULL"),
    )  # fmt: skip
    with op.batch_alter_table("tagana_coordinators") as batch:
        batch.add_column(sa.Column("step", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("role", sa.String(16), server_default="coordinator", nullable=False))


def downgrade() -> None:
    """Drop the command center's tables and the ledger's unversioned rows and topics (their messages are lost)."""
    with op.batch_alter_table("tagana_coordinators") as batch:
        batch.drop_column("role")
        batch.drop_column("step")
    op.drop_index("uq_send_ledger_unversioned_topic", table_name="send_ledger")
    for table in NEW_TABLES:
        op.drop_table(table)
    op.execute(
        "DELETE FROM deliveries WHERE ledger_id IN "
        "(SELECT id FROM send_ledger WHERE alert_version_id IS NULL OR topic <> '')"
    )
    op.execute("DELETE FROM send_ledger WHERE alert_version_id IS NULL OR topic <> ''")
    with op.batch_alter_table("send_ledger") as batch:
        batch.drop_constraint("ck_send_ledger_audience", type_="check")
        batch.create_check_constraint("ck_send_ledger_audience", OLD_AUDIENCE)
        batch.drop_constraint("uq_send_ledger_alert_version_id_recipient_id_channel_topic", type_="unique")
        batch.create_unique_constraint(
            "uq_send_ledger_alert_version_id_recipient_id_channel", ["alert_version_id", "recipient_id", "channel"]
        )
        batch.alter_column("alert_version_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("topic")
