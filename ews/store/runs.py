"""Runs: the run log of each pipeline run, the counts it records, and each message's timeline (for latency)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from ews.errors import StoreError
from ews.store.base import StoreBase, _now
from ews.store.models import (
    LEDGER_STATUSES,
    VERSION_STATUSES,
    AlertVersion,
    Delivery,
    LedgerEntry,
    RunLog,
    SourceDocument,
    Subscriber,
    VillageStateRow,
    WarningRow,
    carries_message,
)
from ews.types import Level


class RunRepository(StoreBase):
    """Run-log entries, counts and message timelines (mixed into :class:`ews.store.repository.Store`)."""

    # -- counts and runs --------------------------------------------------------------------------------

    def counts(self, region: str) -> dict[str, int]:
        """Numbers for dashboards and the run log.

        Keys: ``active_villages`` (level above none), ``villages_<level label>``, ``versions_<status>`` and
        ``ledger_<status>`` (0 when none) for the region's alert versions, plus ``subscribers`` and
        ``opted_out`` (all regions: subscriptions have no region).
        """
        s, a, e = VillageStateRow, AlertVersion, LedgerEntry
        out: dict[str, int] = {"active_villages": 0}
        out.update({f"villages_{lvl.label.lower()}": 0 for lvl in Level if lvl is not Level.NONE})
        out.update({f"versions_{st}": 0 for st in VERSION_STATUSES})
        out.update({f"ledger_{st}": 0 for st in LEDGER_STATUSES})
        with self.engine.connect() as connection:
            levels = connection.execute(
                select(s.level, func.count())
                .where(s.region == region, s.active.is_(True), s.level > int(Level.NONE))
                .group_by(s.level)
            )
            for level, n in levels:
                out[f"villages_{Level(level).label.lower()}"] = int(n)
                out["active_villages"] += int(n)
            versions = connection.execute(select(a.status, func.count()).where(a.region == region).group_by(a.status))
            out.update({f"versions_{st}": int(n) for st, n in versions})
            ledger = connection.execute(
                select(e.status, func.count())
                .join(a, a.id == e.alert_version_id)
                .where(a.region == region)
                .group_by(e.status)
            )
            out.update({f"ledger_{st}": int(n) for st, n in ledger})
            total = connection.execute(select(func.count()).select_from(Subscriber)).scalar_one()
            opted = connection.execute(
                select(func.count()).select_from(Subscriber).where(Subscriber.opted_out_at.is_not(None))
            ).scalar_one()
        out["subscribers"] = int(total) - int(opted)
        out["opted_out"] = int(opted)
        return out

    def start_run(self, region: str, source: str, at: datetime) -> int:
        """Open a run-log entry (status ``"running"``) and return its id."""
        stmt = (
            self._insert(RunLog)
            .values(region=region, started_at=at, source=source, status="running", counts={}, problems=[])
            .returning(RunLog.id)
        )
        with self._tx(f"run of region {region}") as connection:
            return int(connection.execute(stmt).scalar_one())

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, Any],
        problems: Sequence[Any],
        *,
        at: datetime | None = None,
    ) -> None:
        """Close a run-log entry with its outcome; ``counts`` and ``problems`` must be JSON-serialisable.

        Raises
        ------
        StoreError
            No such run.
        """
        stmt = (
            update(RunLog)
            .where(RunLog.id == run_id)
            .values(status=status, counts=dict(counts), problems=list(problems), finished_at=at or _now())
        )
        with self._tx(f"run {run_id}") as connection:
            if connection.execute(stmt).rowcount != 1:
                raise StoreError(f"there is no run {run_id} to finish (start_run returns the id)")

    def last_ledger_id(self) -> int:
        """The newest send-ledger row's id (0 when empty): what a run queues comes after it."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(LedgerEntry.id))).scalar() or 0)

    def message_timelines(
        self,
        region: str,
        thread_id: str | None = None,
        *,
        after_ledger_id: int | None = None,
        grouped: bool = False,
    ) -> list[dict[str, Any]]:
        """Each message of the region (of one thread, or queued after a ledger row) with its life's instants.

        Keys: ``audience``, ``channel``, ``sent`` (its source's ``<sent>``), ``seen`` (first fetched by ews),
        ``decided`` (its alert version stored), ``queued``, ``handed`` (its sending episode began), ``accepted``
        (the provider took it, or the dry-run outbox wrote it) and ``delivered`` (the provider reported it
        delivered); ``None`` where it has not happened. One query (no personal data: no address, no text).
        ``grouped``: one row per distinct timeline, with ``count`` the messages that had it (a village's
        subscribers, queued by one statement, share every instant: a national cycle's 200,000 messages are a
        few thousand rows; :func:`ews.latency.summarise` weighs them).
        """
        e, a, w, s, d = LedgerEntry, AlertVersion, WarningRow, SourceDocument, Delivery
        seen = select(s.identifier, func.min(s.received_at).label("at")).group_by(s.identifier).subquery()
        # A cycle's own messages (after_ledger_id) are found from the ledger's key first (materialised: the planner
        # must not start from the region's versions, which grow with every cycle), then joined to the rest; their
        # deliveries are read by their ledger ids (the deliveries table grows with every message ever sent).
        rows = select(e.id, e.audience, e.channel, e.created_at, e.leased_at, e.alert_version_id).where(
            e.grouped_into.is_(None), carries_message()
        )
        if after_ledger_id is not None:
            rows = rows.where(e.id > after_ledger_id)
        m = rows.cte("mine").prefix_with("MATERIALIZED") if after_ledger_id is not None else rows.subquery("mine")

        def first(*statuses: str) -> Any:
            q = select(d.ledger_id, func.min(d.updated_at).label("at")).where(d.status.in_(statuses))
            if after_ledger_id is not None:
                q = q.where(d.ledger_id.in_(select(m.c.id)))
            return q.group_by(d.ledger_id).subquery()

        took, arrived = first("sent", "dry-run"), first("delivered")
        stmt = (
            select(
                m.c.audience, m.c.channel, w.sent, seen.c.at.label("seen"), a.created_at.label("decided"),
                m.c.created_at.label("queued"), m.c.leased_at.label("handed"), took.c.at.label("accepted"),
                arrived.c.at.label("delivered"),
            )
            .select_from(m)
            .join(a, a.id == m.c.alert_version_id)
            .outerjoin(w, w.identifier == a.warning_id)
            .outerjoin(seen, seen.c.identifier == a.warning_id)
            .outerjoin(took, took.c.ledger_id == m.c.id)
            .outerjoin(arrived, arrived.c.ledger_id == m.c.id)
            .where(a.region == region)
        )  # fmt: skip
        if thread_id is not None:
            stmt = stmt.where(a.thread_id == thread_id)
        if grouped:
            each = stmt.subquery("each")
            columns = list(each.c)
            stmt = select(*columns, func.count().label("count")).group_by(*columns)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(stmt)]

    def latest_runs(self) -> list[dict[str, Any]]:
        """The newest finished run of each region and source (each pipeline DAG's), in one query.

        Keys: region, source, status, finished_at, problems. An empty rain run never hides a degraded nowcast run.
        """
        r = RunLog
        newest = (
            select(func.max(r.id).label("id")).where(r.finished_at.is_not(None)).group_by(r.region, r.source).subquery()
        )
        stmt = select(r.region, r.source, r.status, r.finished_at, r.problems).join(newest, newest.c.id == r.id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(stmt.order_by(r.region))]
