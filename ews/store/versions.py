"""The alert versions aggregate: village states, the alert versions they announce, and their review.

A village state is where one village stands in one warning thread (level, sequence, expiry); each decision
about it is stored as an *alert version*, sent at once (``auto``) or held for a reviewer (``pending``) until it
is ``approved`` or ``rejected``. A decision is final: a decided version stays decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, tuple_, update

from ews.alerts.model import Decision, Transition, VillageState
from ews.errors import StoreError
from ews.store.base import StoreBase, _chunks, _now
from ews.store.models import VERSION_STATUSES, AlertVersion, VillageStateRow
from ews.types import Level


@dataclass(frozen=True)
class AlertVersionRecord:
    """One stored alert version (see :meth:`Store.add_alert_version`)."""

    id: int
    region: str
    thread_id: str
    village_code: str
    seq: int
    transition: Transition
    level: Level
    level_before: Level
    warning_id: str
    cap_identifier: str
    status: str  # "auto" | "pending" | "approved" | "rejected"
    exercise: bool
    reason: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    hazard: str = ""  # "cuaca" | "gempa" | "tsunami" ("" for versions stored before it was kept)
    facts: tuple[tuple[str, str], ...] = ()  # what its message stated (an earthquake's magnitude, depth...)


@dataclass(frozen=True)
class NewVersion:
    """An alert version to record with :meth:`VersionRepository.add_alert_versions` (see :meth:`add_alert_version`)."""

    decision: Decision
    cap_identifier: str
    status: str
    hazard: str | None = None
    facts: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class PendingThread:
    """Versions of one thread waiting for review (see :meth:`Store.pending_threads`)."""

    region: str
    thread_id: str
    versions: int
    villages: int
    level: Level  # the highest level held
    since: datetime  # the oldest held version's creation
    exercise: bool

    def line(self) -> str:
        """One line for a report or a terminal (no personal data)."""
        mark = " LATIHAN" if self.exercise else ""
        return (
            f"{self.thread_id}: {self.versions} version(s), {self.villages} village(s), up to {self.level.label}"
            f"{mark}, waiting since {self.since.isoformat()}"
        )


class VersionRepository(StoreBase):
    """Queries of village states, alert versions and their review (mixed into :class:`ews.store.repository.Store`)."""

    # -- village states ---------------------------------------------------------------------------------

    def village_states(self, region: str) -> list[VillageState]:
        """Every village state of a region, active and inactive, by thread then village."""
        s = VillageStateRow
        stmt = select(s).where(s.region == region).order_by(s.thread_id, s.village_code)
        with self.engine.connect() as connection:
            return [self._state(r) for r in connection.execute(stmt).mappings()]

    def active_alerts(self, region: str) -> list[VillageState]:
        """The region's villages under an active alert (level above none), highest level first."""
        s = VillageStateRow
        stmt = (
            select(s)
            .where(s.region == region, s.active.is_(True), s.level > int(Level.NONE))
            .order_by(s.level.desc(), s.village_code, s.thread_id)
        )
        with self.engine.connect() as connection:
            return [self._state(r) for r in connection.execute(stmt).mappings()]

    def active_threads(self, region: str) -> set[str]:
        """The threads that have at least one village under an active alert in the region (one query)."""
        s = VillageStateRow
        stmt = select(s.thread_id).where(s.region == region, s.active.is_(True), s.level > int(Level.NONE)).distinct()
        with self.engine.connect() as connection:
            return set(connection.execute(stmt).scalars())

    def region_threads(self, region: str) -> set[str]:
        """Every thread with a village state in the region, active or not (one query)."""
        s = VillageStateRow
        with self.engine.connect() as connection:
            return set(connection.execute(select(s.thread_id).where(s.region == region).distinct()).scalars())

    @staticmethod
    def _state(r: Any) -> VillageState:
        return VillageState(
            region=r["region"],
            village_code=r["village_code"],
            thread_id=r["thread_id"],
            level=Level(r["level"]),
            seq=r["seq"],
            warning_id=r["warning_id"],
            warning_sent=r["warning_sent"],
            expires=r["expires"],
            fraction=r["fraction"],
            active=bool(r["active"]),
        )

    def save_states(self, region: str, states: Sequence[VillageState], *, at: datetime | None = None) -> None:
        """Insert or replace village states (by region, village, thread) in one transaction.

        Raises
        ------
        StoreError
            A state belongs to another region.
        """
        wrong = sorted({s.region for s in states} - {region})
        if wrong:
            raise StoreError(f"save_states for region {region!r} was given states of region(s) {', '.join(wrong)}")
        if not states:
            return
        updated_at = at or _now()
        rows = [
            {
                "region": s.region,
                "village_code": s.village_code,
                "thread_id": s.thread_id,
                "level": int(s.level),
                "seq": s.seq,
                "warning_id": s.warning_id,
                "warning_sent": s.warning_sent,
                "expires": s.expires,
                "fraction": float(s.fraction),
                "active": s.active,
                "updated_at": updated_at,
            }
            for s in states
        ]
        keys = ("region", "village_code", "thread_id")
        stmt = self._insert(VillageStateRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={k: stmt.excluded[k] for k in rows[0] if k not in keys}
        )
        with self._tx(f"village states of region {region}") as connection:
            connection.execute(stmt, rows)

    # -- alert versions ---------------------------------------------------------------------------------

    def add_alert_version(
        self,
        decision: Decision,
        cap_identifier: str,
        status: str,
        *,
        at: datetime | None = None,
        hazard: str | None = None,
        facts: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Record the alert version a decision announces and return its id.

        Idempotent: the same (region, thread, village, seq) returns the id stored first and changes nothing.

        Parameters
        ----------
        decision
            The decision; its ``seq`` numbers the version.
        cap_identifier
            The identifier of the CAP message ews publishes for it (unique).
        status
            ``"auto"`` (sent without review), ``"pending"`` (waits for a reviewer), ``"approved"`` or ``"rejected"``.
        at
            When it was recorded (aware; default now).
        hazard
            What residents act on (``"cuaca"``, ``"gempa"``, ``"tsunami"``), for the advice of later messages.
        facts
            What its message states, as (name, value) pairs (an earthquake's magnitude, depth, epicentre...).

        Raises
        ------
        StoreError
            Unknown status, or ``cap_identifier`` already used by another version.
        """
        if status not in VERSION_STATUSES:
            raise StoreError(f"alert version status {status!r} is unknown; use one of {', '.join(VERSION_STATUSES)}")
        d = decision
        stmt = (
            self._insert(AlertVersion)
            .values(
                region=d.region,
                thread_id=d.thread_id,
                village_code=d.village_code,
                seq=d.seq,
                transition=str(d.transition),
                level=int(d.level),
                level_before=int(d.level_before),
                warning_id=d.warning_id,
                cap_identifier=cap_identifier,
                status=status,
                exercise=d.exercise,
                reason=d.reason,
                created_at=at or _now(),
                hazard=hazard or None,
                facts=[list(f) for f in facts] or None,
            )
            .on_conflict_do_nothing(index_elements=["region", "thread_id", "village_code", "seq"])
        )
        a = AlertVersion
        where = (a.region == d.region, a.thread_id == d.thread_id, a.village_code == d.village_code, a.seq == d.seq)
        what = f"alert version {d.region}/{d.thread_id}/{d.village_code}#{d.seq} (CAP {cap_identifier})"
        with self._tx(what) as connection:
            connection.execute(stmt)
            found = connection.execute(select(a.id).where(*where)).scalar_one()
        return int(found)

    def add_alert_versions(self, versions: Sequence[NewVersion], *, at: datetime | None = None) -> list[int]:
        """Record the alert versions of a cycle at once and return their ids, in order.

        Set-based :meth:`add_alert_version`: one multi-row ``INSERT ... ON CONFLICT DO NOTHING`` and one read-back
        per thread (chunked), none per village. Idempotent in the same way: a (region, thread, village, seq)
        stored before keeps its first row and returns its id.

        Raises
        ------
        StoreError
            An unknown status, or a ``cap_identifier`` already used by another version (nothing is recorded).
        """
        if not versions:
            return []
        for v in versions:
            if v.status not in VERSION_STATUSES:
                raise StoreError(
                    f"alert version status {v.status!r} ({v.decision.village_code}, thread {v.decision.thread_id}) "
                    f"is unknown; use one of {', '.join(VERSION_STATUSES)}"
                )
        when = at or _now()
        threads = {v.decision.thread_id for v in versions}
        rows = [
            {
                "region": v.decision.region, "thread_id": v.decision.thread_id, "village_code": v.decision.village_code,
                "seq": v.decision.seq, "transition": str(v.decision.transition), "level": int(v.decision.level),
                "level_before": int(v.decision.level_before), "warning_id": v.decision.warning_id,
                "cap_identifier": v.cap_identifier, "status": v.status, "exercise": v.decision.exercise,
                "reason": v.decision.reason, "created_at": when, "hazard": v.hazard or None,
                "facts": [list(f) for f in v.facts] or None,
            }
            for v in versions
        ]  # fmt: skip
        a = AlertVersion
        keys = ("region", "thread_id", "village_code", "seq")
        found: dict[tuple[str, str, str, int], int] = {}
        with self._tx(f"{len(versions)} alert version(s) of thread(s) {', '.join(sorted(threads))}") as c:
            for i, *key in self._insert_new(c, AlertVersion, rows, conflict=keys, returning=("id", *keys)):
                found[(key[0], key[1], key[2], key[3])] = int(i)
            # Versions stored before (a cycle run again) are read back, one query per thread and chunk.
            wanted: dict[tuple[str, str], set[str]] = {}
            for v in versions:
                x = v.decision
                if (x.region, x.thread_id, x.village_code, x.seq) not in found:
                    wanted.setdefault((x.region, x.thread_id), set()).add(x.village_code)
            for (region, thread), villages in sorted(wanted.items()):
                for chunk in _chunks(sorted(villages)):
                    q = select(a.id, a.village_code, a.seq).where(
                        a.region == region, a.thread_id == thread, a.village_code.in_(chunk)
                    )
                    for i, village, seq in c.execute(q):
                        found.setdefault((region, thread, village, seq), int(i))
        d = [v.decision for v in versions]
        return [found[(x.region, x.thread_id, x.village_code, x.seq)] for x in d]

    def alert_version(self, version_id: int) -> AlertVersionRecord:
        """One alert version by id.

        Raises
        ------
        StoreError
            No such version.
        """
        with self.engine.connect() as connection:
            row = connection.execute(select(AlertVersion).where(AlertVersion.id == version_id)).mappings().first()
        if row is None:
            raise StoreError(f"there is no alert version {version_id}")
        return self._version(row)

    def versions_of(self, region: str, thread_id: str, village_code: str) -> list[AlertVersionRecord]:
        """Every stored version of one village's alert in one thread, by ``seq`` (for CAP references)."""
        a = AlertVersion
        stmt = (
            select(a)
            .where(a.region == region, a.thread_id == thread_id, a.village_code == village_code)
            .order_by(a.seq)
        )
        with self.engine.connect() as connection:
            return [self._version(r) for r in connection.execute(stmt).mappings()]

    def alert_versions(self, version_ids: Iterable[int]) -> list[AlertVersionRecord]:
        """The alert versions of ``version_ids`` (in that order; an unknown id is left out), one query per chunk."""
        wanted = list(dict.fromkeys(version_ids))
        a = AlertVersion
        found: dict[int, AlertVersionRecord] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(wanted):
                for row in connection.execute(select(a).where(a.id.in_(chunk))).mappings():
                    found[row["id"]] = self._version(row)
        return [found[i] for i in wanted if i in found]

    def versions_by_village(
        self, region: str, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[AlertVersionRecord]]:
        """(thread, village) -> every stored version of that village's alert in that thread, by ``seq``.

        Like :meth:`versions_of` for many villages at once (CAP references): one query per chunk of villages of a
        thread, none per village.
        """
        by_thread: dict[str, set[str]] = {}
        for thread, village in pairs:
            by_thread.setdefault(thread, set()).add(village)
        a = AlertVersion
        out: dict[tuple[str, str], list[AlertVersionRecord]] = {}
        with self.engine.connect() as connection:
            for thread, villages in sorted(by_thread.items()):
                for chunk in _chunks(sorted(villages)):
                    stmt = (
                        select(a)
                        .where(a.region == region, a.thread_id == thread, a.village_code.in_(chunk))
                        .order_by(a.village_code, a.seq)
                    )
                    for row in connection.execute(stmt).mappings():
                        out.setdefault((thread, row["village_code"]), []).append(self._version(row))
        return out

    def current_versions(self, region: str, keys: Iterable[tuple[str, str, int]]) -> list[AlertVersionRecord]:
        """The versions numbered ``seq`` of each ``(thread_id, village_code, seq)``, by chunks of keys per thread.

        Used to list the CAP messages of every active alert without a query per village; it reads only the
        versions asked for (by the unique key), never a thread's whole history.
        """
        by_thread: dict[str, dict[tuple[str, int], None]] = {}
        for thread, village, seq in keys:
            by_thread.setdefault(thread, {})[(village, seq)] = None
        a = AlertVersion
        out: list[AlertVersionRecord] = []
        with self.engine.connect() as connection:
            for thread, wanted in sorted(by_thread.items()):
                for chunk in _chunks(sorted(wanted)):
                    stmt = (
                        select(a)
                        .where(a.region == region, a.thread_id == thread, tuple_(a.village_code, a.seq).in_(chunk))
                        .order_by(a.village_code, a.seq)
                    )
                    out.extend(self._version(row) for row in connection.execute(stmt).mappings())
        return out

    def version_hazards(self, region: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(thread, village) -> the hazard of its latest version that recorded one, for those ``pairs`` of ``region``.

        One query per thread and chunk of villages, through the unique key: only those villages' versions are read,
        never a standing thread's whole history.
        """
        by_thread: dict[str, set[str]] = {}
        for thread, village in pairs:
            by_thread.setdefault(thread, set()).add(village)
        a = AlertVersion
        found: dict[tuple[str, str], tuple[int, str]] = {}
        with self.engine.connect() as connection:
            for thread, villages in sorted(by_thread.items()):
                for chunk in _chunks(sorted(villages)):
                    stmt = select(a.village_code, a.seq, a.hazard).where(
                        a.region == region, a.thread_id == thread, a.village_code.in_(chunk), a.hazard.is_not(None)
                    )
                    for village, seq, hazard in connection.execute(stmt):
                        if (thread, village) not in found or seq > found[(thread, village)][0]:
                            found[(thread, village)] = (int(seq), str(hazard))
        return {key: hazard for key, (_, hazard) in found.items()}

    def pending_versions(self, region: str | None = None) -> list[AlertVersionRecord]:
        """Alert versions waiting for review (of one region, or all), oldest first."""
        stmt = select(AlertVersion).where(AlertVersion.status == "pending").order_by(AlertVersion.id)
        if region is not None:
            stmt = stmt.where(AlertVersion.region == region)
        with self.engine.connect() as connection:
            return [self._version(r) for r in connection.execute(stmt).mappings()]

    @staticmethod
    def _version(r: Any) -> AlertVersionRecord:
        return AlertVersionRecord(
            id=r["id"],
            region=r["region"],
            thread_id=r["thread_id"],
            village_code=r["village_code"],
            seq=r["seq"],
            transition=Transition(r["transition"]),
            level=Level(r["level"]),
            level_before=Level(r["level_before"]),
            warning_id=r["warning_id"],
            cap_identifier=r["cap_identifier"],
            status=r["status"],
            exercise=bool(r["exercise"]),
            reason=r["reason"],
            created_at=r["created_at"],
            decided_by=r["decided_by"],
            decided_at=r["decided_at"],
            hazard=r.get("hazard") or "",
            facts=tuple((str(k), str(v)) for k, v in (r.get("facts") or ())),
        )

    def set_version_status(self, version_id: int, status: str, by: str, *, at: datetime | None = None) -> None:
        """Approve or reject a pending alert version, recording who decided and when.

        Raises
        ------
        StoreError
            ``status`` is not ``"approved"``/``"rejected"``, the version does not exist, or it is not pending
            (a decision is final: the message says its current status).
        """
        if status not in ("approved", "rejected"):
            raise StoreError(f"a reviewer can set an alert version to 'approved' or 'rejected', not {status!r}")
        if not by.strip():
            raise StoreError(f"approving or rejecting alert version {version_id} needs the reviewer's name (by)")
        a = AlertVersion
        stmt = (
            update(a)
            .where(a.id == version_id, a.status == "pending")
            .values(status=status, decided_by=by, decided_at=at or _now())
        )
        with self._tx(f"alert version {version_id}") as connection:
            if connection.execute(stmt).rowcount == 1:
                return
            current = connection.execute(select(a.status).where(a.id == version_id)).scalar_one_or_none()
        if current is None:
            raise StoreError(f"there is no alert version {version_id}")
        raise StoreError(
            f"alert version {version_id} is {current!r}, not 'pending': only pending versions can be approved "
            "or rejected; a decided version stays decided (issue a new version to change what was sent)"
        )

    def decide_pending(
        self,
        region: str,
        status: str,
        by: str,
        *,
        threads: Sequence[str] = (),
        ids: Sequence[int] = (),
        every: bool = False,
        at: datetime | None = None,
    ) -> list[AlertVersionRecord]:
        """Approve or reject, in one statement, pending versions of ``region``; returns those decided (oldest first).

        Chosen are the versions in ``threads``, those with ``ids``, or ``every`` pending one. A version decided
        already stays so.

        Raises
        ------
        StoreError
            A bad ``status`` or ``by``, nothing selected, an id of another region, or a selection with
            nothing pending (the message says what the selection holds).
        """
        if status not in ("approved", "rejected"):
            raise StoreError(f"a reviewer can set alert versions to 'approved' or 'rejected', not {status!r}")
        if not by.strip():
            raise StoreError("approving or rejecting alert versions needs the reviewer's name (by)")
        if not (threads or ids or every):
            raise StoreError("say which alert versions to decide: a thread id, a version id, or all pending")
        a = AlertVersion
        chosen = a.region == region
        if not every:
            chosen &= a.thread_id.in_(list(threads)) | a.id.in_(list(ids))
        stmt = (
            update(a)
            .where(chosen, a.status == "pending")
            .values(status=status, decided_by=by, decided_at=at or _now())
            .returning(*AlertVersion.__table__.c)
        )
        with self._tx(f"decide alert versions of {region}") as connection:
            foreign = []
            if ids:
                others = select(a.id, a.region).where(a.id.in_(list(ids)), a.region != region)
                foreign = list(connection.execute(others))
            if foreign:
                raise StoreError(
                    "alert version(s) "
                    + ", ".join(f"{i} (region {r})" for i, r in foreign)
                    + f" do not belong to region {region}"
                )
            decided = sorted((self._version(r) for r in connection.execute(stmt).mappings()), key=lambda v: v.id)
            if decided:
                return decided
            held = connection.execute(
                select(a.status, func.count()).where(chosen).group_by(a.status)
            ).all()  # fmt: skip
        what = ", ".join([*threads, *map(str, ids)]) or "all"
        if not held:
            raise StoreError(f"no alert version of region {region} matches {what} (see ews alerts list)")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(held))
        raise StoreError(f"nothing pending in {what} of region {region} ({counts}): a decision is final")

    def pending_threads(self, region: str | None = None) -> list[PendingThread]:
        """What waits for review, by thread: versions, villages, the highest level, the oldest (in one query)."""
        a = AlertVersion
        stmt = (
            select(a.region, a.thread_id, func.count(), func.count(func.distinct(a.village_code)),
                   func.max(a.level), func.min(a.created_at), func.max(case((a.exercise, 1), else_=0)))
            .where(a.status == "pending")
            .group_by(a.region, a.thread_id)
            .order_by(func.min(a.created_at))
        )  # fmt: skip
        if region is not None:
            stmt = stmt.where(a.region == region)
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return [
            PendingThread(
                region=r[0], thread_id=r[1], versions=int(r[2]), villages=int(r[3]), level=Level(int(r[4])),
                since=r[5], exercise=bool(r[6]),
            )
            for r in rows
        ]  # fmt: skip
