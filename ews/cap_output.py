"""CAP output of a cycle: one CAP 1.2 alert per area in force or ended, and the Atom index of those in force.

Edge composition (it reads the store and writes files): :mod:`ews.cap.areas` groups villages into areas,
:mod:`ews.cap.writer` renders, this module decides which area alerts a cycle publishes and reuses what was
published before (the store's :mod:`ews.store.cap_areas` keeps the partition).

Cost per cycle (see docs/cap-output.md): the store is read in bulk (the written versions in one query per chunk,
the live areas in one query, headers per thread rendered); the partition is one spatial-index query; only new
areas (or ones missing from the previous folder) are rendered, with each area's polygon text from
:mod:`ews.store.cap_cache`; files are written plainly into the staging folder, whose swap
(:func:`ews.store.artifacts.atomic_folder`) makes them durable at once; an unchanged area's file is hard-linked
from the previous snapshot, never read. Which previous files can be linked is told by the snapshot's
:data:`MANIFEST` (identifier -> ``sent``, SHA-256 and stat), not by opening them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ews.alerts.model import Transition, VillageState
from ews.cap.areas import (
    AREA_MAX_VERTICES,
    IN_FORCE,
    AreaKey,
    area_digest,
    area_identifier,
    area_polygons,
    components,
    kecamatan_of,
)
from ews.cap.writer import (
    CapArea,
    CapMessage,
    CapReference,
    FeedEntry,
    atom_feed_of,
    cap_time,
    feed_entry,
    msg_types_for,
    to_cap_xml,
)
from ews.codes import local_zone
from ews.config import RegionConfig
from ews.errors import CapError
from ews.store.artifacts import link_or_copy, write_bytes_staged
from ews.store.cap_cache import area_key, cached_texts, polygon_keys
from ews.store.repository import AlertVersionRecord, CapAreaRecord, Store
from ews.store.warnings import WarningHeader
from ews.types import Level, Warning

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
"""The CAP folder's list of its files: ``{"format": ..., "files": {identifier: record}}`` (see :class:`Listed`)."""
_MANIFEST_FORMAT = "ews-cap-manifest/3"  # 3: area alerts (2: one file per village version)


@dataclass(frozen=True)
class _Village:
    name: str
    kecamatan: str
    kabkota: str
    geometry: Any


@dataclass(frozen=True)
class _Area:
    """One area of this cycle's partition: its key, its members' versions (by code) and its digest."""

    key: AreaKey
    members: tuple[AlertVersionRecord, ...]
    digest: str


def publish_cap(
    store: Store,
    config: RegionConfig,
    villages: pd.DataFrame,
    written_ids: Sequence[int],
    by_id: Mapping[str, Warning],
    now: datetime,
    cap_dir: Path,
    previous_cap_dir: Path | None,
    *,
    cache_dir: Path | None = None,
    active: tuple[Sequence[VillageState], Sequence[AlertVersionRecord]] | None = None,
    max_vertices: int = AREA_MAX_VERTICES,
) -> int:
    """Write the CAP area alerts of a cycle into ``cap_dir``; return how many new area alerts this cycle published.

    The region's alerts in force (every active alert's latest published version) and the endings written this cycle
    are grouped into areas (:mod:`ews.cap.areas`); a village of a live area whose newer version waits for review
    stays in force as last published, and an ending published since its cycle (approved later, or written by a cycle
    whose CAP step failed) ends its area now (:func:`_account_for_live`). An area whose digest matches one the store
    lists as in force is the same message: its file is linked from ``previous_cap_dir`` (or rendered again, to the
    same bytes, from what the store kept); any other area is a new alert, sent now, whose ``<references>`` name
    every area alert in force that held one of its villages, and those are no longer in force. ``written_ids``: the
    alert versions that went out this cycle. ``by_id``: this cycle's warnings by identifier (the stored headers
    stand in for the others). ``cap_dir`` is expected inside an :func:`ews.store.artifacts.atomic_folder` staging
    folder: its files are not fsync'ed one by one. ``cache_dir``: where polygon texts are kept between processes
    (the zonal weights' cache folder); ``None`` keeps them in this process only. ``active``: the region's active
    village states and their current versions, where the caller has them (else they are read). ``max_vertices``:
    most points of one ``<polygon>``.

    Raises
    ------
    CapError
        A version of a village that is not in ``villages``, or a message that cannot be written as CAP 1.2.
    """
    written = store.alert_versions(written_ids)
    if active is None:
        states = store.active_alerts(config.id)
        current: Sequence[AlertVersionRecord] = store.current_versions(
            config.id, [(s.thread_id, s.village_code, s.seq) for s in states]
        )
    else:
        current = active[1]
    in_force = [v for v in current if v.status in _PUBLISHED and not v.transition.ends and v.level > Level.NONE]
    told = {(v.thread_id, v.village_code) for v in in_force}
    endings: dict[tuple[str, str], AlertVersionRecord] = {}
    for v in written:
        key = (v.thread_id, v.village_code)
        if v.transition.ends and key not in told and (key not in endings or v.seq > endings[key].seq):
            endings[key] = v
    live = store.live_cap_areas(config.id)
    _account_for_live(store, config.id, live, in_force, endings)
    members = [*in_force, *endings.values()]
    places = _villages(villages, {v.village_code for v in members})
    unknown = sorted({v.village_code for v in members} - set(places))
    if unknown:
        raise CapError(
            f"{len(unknown)} alert(s) name villages that are not in the region's boundary file "
            f"({', '.join(unknown[:5])}{', …' if len(unknown) > 5 else ''}): restore the villages or end their alerts"
        )
    areas = (None if endings else _same_partition(in_force, live)) or _partition(members, places)

    # Which areas are the ones already published (same digest), and which in-force areas the new ones replace.
    live_by_digest = {r.digest: r for r in live}
    ended = [a.digest for a in areas if a.key.kind != IN_FORCE and a.digest not in live_by_digest]
    stored_endings = store.cap_areas_by_digest(config.id, ended) if ended else {}
    live_of_village = {(r.thread_id, code): r for r in live for code, _ in r.members}
    sent = now.astimezone(UTC).replace(microsecond=0)
    published: list[tuple[_Area, CapAreaRecord]] = []
    new: list[CapAreaRecord] = []
    orphans: list[int] = []  # endings of villages in no area in force (published before areas existed)
    for area in areas:
        record = live_by_digest.get(area.digest)
        if record is None and area.key.kind != IN_FORCE:
            record = stored_endings.get(area.digest)
        if record is None:
            replaced = {
                r.identifier: r.sent
                for v in area.members
                if (r := live_of_village.get((v.thread_id, v.village_code))) is not None
            }
            record = CapAreaRecord(
                region=config.id, thread_id=area.key.thread_id,
                identifier=area_identifier(config.id, area.key.thread_id, area.key.kecamatan, area.digest, sent),
                digest=area.digest, kind=area.key.kind, sent=sent, live=area.key.kind == IN_FORCE,
                members=tuple((v.village_code, v.seq) for v in area.members),
                refs=tuple(sorted(replaced.items(), key=lambda item: (item[1], item[0]))),
            )  # fmt: skip
            if not record.refs and area.key.kind != IN_FORCE:
                orphans.append(len(published))
            new.append(record)
        published.append((area, record))
    if orphans:
        published = _refer_to_villages(store, config.id, published, orphans, new)
    kept = {r.identifier for _, r in published}
    retired = [r.identifier for r in live if r.identifier not in kept]

    cap_dir.mkdir(parents=True, exist_ok=True)
    # A published CAP message never changes: one already in the previous snapshot is linked from there, not
    # rendered again. The same identifier from another store (a database reset) would have another <sent>.
    manifest: dict[str, Listed] = {}
    previous = read_manifest(previous_cap_dir) if previous_cap_dir is not None else {}
    to_render: list[tuple[_Area, CapAreaRecord]] = []
    for area, record in published:
        listed = previous.get(record.identifier)
        name = f"{record.identifier}.xml"
        if (
            previous_cap_dir is not None
            and listed is not None
            and listed.sent == _sent_of(record, area)
            # The file must still be the one listed (inode, size, modification time, as git's index checks a
            # working tree): one edited or replaced since is rendered again, and no file is read to tell.
            and _file_stat(previous_cap_dir / name) == listed.stat
            and link_or_copy(previous_cap_dir / name, cap_dir / name)  # False: the file is gone, render it
        ):
            manifest[record.identifier] = dataclasses.replace(listed, stat=_file_stat(cap_dir / name))
        else:
            to_render.append((area, record))

    headers: dict[str, WarningHeader] = {}
    for thread in sorted({a.key.thread_id for a, _ in to_render}):
        headers.update({h.identifier: h for h in store.warning_headers(thread)})

    def source_of(v: AlertVersionRecord) -> Warning | WarningHeader | None:
        return by_id.get(v.warning_id) or headers.get(v.warning_id)

    # Polygon texts once per set of outlines (cached across cycles), named in errors by the area's identifier.
    outlines = [[places[v.village_code].geometry for v in a.members] for a, _ in to_render]
    flat = polygon_keys([g for group in outlines for g in group])
    keys, start = [], 0
    for group in outlines:
        keys.append(area_key(flat[start : start + len(group)], max_vertices))
        start += len(group)
    texts = cached_texts(
        cache_dir,
        keys,
        lambda i: area_polygons(
            outlines[i],
            f"{to_render[i][1].identifier}: area of {len(outlines[i])} village(s) in kecamatan "
            f"{to_render[i][0].key.kecamatan}",
            max_vertices,
        ),
    )
    for (area, record), polygons in zip(to_render, texts, strict=True):
        lead = max(area.members, key=lambda v: (v.created_at, v.village_code))
        message = area_message(config, area, record, places, polygons, source_of(lead))
        data = to_cap_xml(message)
        name = f"{record.identifier}.xml"
        write_bytes_staged(cap_dir / name, data)
        entry = feed_entry(message, name)
        manifest[record.identifier] = Listed(
            cap_time(message.sent), hashlib.sha256(data).hexdigest(), int(entry.sent.timestamp()), entry.xml,
            _file_stat(cap_dir / name),
        )  # fmt: skip
    # The feed lists the areas in force; a kept message's entry comes from the manifest, as its file did.
    feed = [manifest[r.identifier].feed_entry(r.identifier) for _, r in published if r.kind == IN_FORCE]
    write_bytes_staged(
        cap_dir / "index.atom",
        atom_feed_of(feed, feed_id=f"urn:ews:feed:{cap_dir.name}", title="ews: peringatan aktif", updated=now),
    )
    document = {"format": _MANIFEST_FORMAT, "files": {k: manifest[k].to_json() for k in sorted(manifest)}}
    write_bytes_staged(cap_dir / MANIFEST, json.dumps(document, separators=(",", ":")).encode())
    # Stored last: a cycle that fails before here publishes nothing and leaves the store's partition as it was.
    if new or retired:
        store.record_cap_areas(config.id, new, retired)
    return len(new)


@dataclass(frozen=True)
class Listed:
    """What a CAP folder's manifest says of one of its files (see :data:`MANIFEST`).

    ``sent``: the message's ``<sent>`` as written; ``sha256``: of the file's bytes; ``at``: ``sent`` in seconds since
    the epoch (orders the feed); ``entry``: the message's Atom ``<entry>`` as written in ``index.atom``; ``stat``:
    the file's (inode, size, modification time in ns) when the manifest was written (``None``: unknown).
    """

    sent: str
    sha256: str
    at: int
    entry: str
    stat: tuple[int, int, int] | None = None

    def feed_entry(self, identifier: str) -> FeedEntry:
        """The message's entry for the next feed."""
        return FeedEntry(identifier, datetime.fromtimestamp(self.at, UTC), self.entry)

    def to_json(self) -> dict[str, Any]:
        """The manifest's record."""
        return {"sent": self.sent, "sha256": self.sha256, "at": self.at, "entry": self.entry, "stat": self.stat}


def read_manifest(folder: Path) -> dict[str, Listed]:
    """Identifier -> :class:`Listed` for the CAP files a published folder lists ({} without a usable manifest).

    A folder without a manifest (written by an older ews) or with one that cannot be read has all its active
    messages rendered again by the next cycle, with the same content; a record of the wrong shape, likewise.
    """
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("CAP manifest %s is unreadable (%s); its active messages are rendered again", path, exc)
        return {}
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict) or document.get("format") != _MANIFEST_FORMAT:
        log.warning("CAP manifest %s is not an %s file; its active messages are rendered again", path, _MANIFEST_FORMAT)
        return {}
    out: dict[str, Listed] = {}
    for identifier, record in files.items():
        if not isinstance(record, dict):
            continue
        sent, sha256, at, entry, stat = (record.get(k) for k in ("sent", "sha256", "at", "entry", "stat"))
        if not (isinstance(sent, str) and isinstance(sha256, str) and isinstance(at, int) and isinstance(entry, str)):
            continue
        if not (isinstance(stat, list) and len(stat) == 3 and all(isinstance(n, int) for n in stat)):
            continue
        out[str(identifier)] = Listed(sent, sha256, at, entry, (stat[0], stat[1], stat[2]))
    return out


def _file_stat(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, modification time in ns) of a file, ``None`` if it is gone."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _sent_text(version: AlertVersionRecord) -> str:
    return cap_time(version.created_at.astimezone(local_zone(version.village_code)[0]))


def _villages(villages: pd.DataFrame, wanted: set[str]) -> dict[str, _Village]:
    """The villages of ``wanted`` by code, read from the table column by column (no row lookups)."""
    rows = villages[villages["code"].isin(wanted)]
    columns = (rows[c].tolist() for c in ("code", "name", "kecamatan_name", "kabkota_name", "geometry"))
    return {
        str(code): _Village(str(name), str(kec), str(kab), geometry)
        for code, name, kec, kab, geometry in zip(*columns, strict=True)
    }


_PUBLISHED = ("auto", "approved")  # review statuses of versions that went out


def _account_for_live(
    store: Store,
    region: str,
    live: Sequence[CapAreaRecord],
    in_force: list[AlertVersionRecord],
    endings: dict[tuple[str, str], AlertVersionRecord],
) -> None:
    """Every village of a live area is in this cycle's partition: in force, or ended by a published ending.

    A village the cycle neither announces nor ends is looked up (one query for all of them) and its latest
    published version decides (``in_force`` and ``endings`` are extended in place): a newer version held for
    review (or rejected) leaves the public with what it was last told, so that version stays in force; an ending
    approved by a reviewer after its cycle is published now, as the all-clear of that area. A village with no
    published version (never announced) is left out.
    """
    seen = {(v.thread_id, v.village_code) for v in in_force} | set(endings)
    missing = {(r.thread_id, code) for r in live for code, _ in r.members} - seen
    if not missing:
        return
    history = store.versions_by_village(region, missing)
    for key in sorted(missing):
        published = [v for v in history.get(key, []) if v.status in _PUBLISHED]
        if not published:
            continue
        last = max(published, key=lambda v: v.seq)
        if last.transition.ends:
            endings[key] = last
        elif last.level > Level.NONE:
            in_force.append(last)


def _key_of(v: AlertVersionRecord) -> AreaKey:
    return AreaKey(
        thread_id=v.thread_id,
        kind=v.transition.value if v.transition.ends else IN_FORCE,
        level=v.level_before if v.transition.ends else v.level,
        exercise=v.exercise,
        hazard=v.hazard or "cuaca",
        kecamatan=kecamatan_of(v.village_code),
    )


def _partition(members: Sequence[AlertVersionRecord], places: Mapping[str, _Village]) -> list[_Area]:
    """The cycle's areas: members grouped by :class:`AreaKey`, kecamatan and contiguity (:func:`components`)."""
    keys = [_key_of(v) for v in members]
    areas = []
    for group in components(keys, [places[v.village_code].geometry for v in members]):
        versions = tuple(sorted((members[i] for i in group), key=lambda v: v.village_code))
        key = keys[group[0]]
        areas.append(_Area(key, versions, area_digest(key, [(v.village_code, v.seq) for v in versions])))
    return sorted(areas, key=lambda a: (a.key, a.members[0].village_code))


def _same_partition(in_force: Sequence[AlertVersionRecord], live: Sequence[CapAreaRecord]) -> list[_Area] | None:
    """The live areas again, when this cycle's alerts in force are exactly their members; else ``None``.

    A cycle that changed nothing does not redo the spatial grouping (~1.3 s at 15,000 villages in force). Each
    area's digest is computed again from the versions: one that no longer matches (a stored row of another
    format) makes the cycle partition afresh.
    """
    by_member = {(v.thread_id, v.village_code, v.seq): v for v in in_force}
    if len(by_member) != len(in_force) or len(by_member) != sum(len(r.members) for r in live):
        return None
    areas = []
    for record in live:
        versions = []
        for code, seq in record.members:
            version = by_member.get((record.thread_id, code, seq))
            if version is None:
                return None
            versions.append(version)
        versions.sort(key=lambda v: v.village_code)
        key = _key_of(versions[0])
        if any(_key_of(v) != key for v in versions[1:]):
            return None
        area = _Area(key, tuple(versions), area_digest(key, [(v.village_code, v.seq) for v in versions]))
        if area.digest != record.digest:
            return None
        areas.append(area)
    return sorted(areas, key=lambda a: (a.key, a.members[0].village_code))


def _refer_to_villages(
    store: Store,
    region: str,
    published: list[tuple[_Area, CapAreaRecord]],
    orphans: Sequence[int],
    new: list[CapAreaRecord],
) -> list[tuple[_Area, CapAreaRecord]]:
    """Give endings that replace no area alert the village messages they end (an alert published per village).

    CAP requires an Update or Cancel to reference what it replaces; an alert announced before area alerts
    existed (or whose area the store lost) was published as one message per village, under its version's own
    identifier, so the ending references those.
    """
    wanted = {(v.thread_id, v.village_code) for i in orphans for v in published[i][0].members}
    history = store.versions_by_village(region, wanted)
    out = list(published)
    for i in orphans:
        area, record = published[i]
        refs = {
            e.cap_identifier: e.created_at.astimezone(UTC).replace(microsecond=0)
            for v in area.members
            for e in history.get((v.thread_id, v.village_code), [])
            if e.seq < v.seq
        }
        better = dataclasses.replace(record, refs=tuple(sorted(refs.items(), key=lambda item: (item[1], item[0]))))
        new[new.index(record)] = better
        out[i] = (area, better)
    return out


def _sent_of(record: CapAreaRecord, area: _Area) -> str:
    return cap_time(record.sent.astimezone(local_zone(area.members[0].village_code)[0]))


def area_message(
    config: RegionConfig,
    area: _Area,
    record: CapAreaRecord,
    places: Mapping[str, _Village],
    polygons: Sequence[str],
    warning: Warning | WarningHeader | None,
) -> CapMessage:
    """The CAP message of one area alert.

    Its transition is the one its villages share (all escalated: ``escalate``), else ``update``; an alert in
    force that replaces nothing is ``new``. Event, effective and expiry come from the source warning of the
    member announced last.
    """
    from ews.alerting import issuer_of  # the alert step imports this module

    lead = max(area.members, key=lambda v: (v.created_at, v.village_code))
    tz, zone = local_zone(lead.village_code)
    sender = f"ews.{config.id}"
    references = tuple(CapReference(sender, identifier, at.astimezone(tz)) for identifier, at in record.refs)
    if area.key.kind != IN_FORCE:
        transition = Transition(area.key.kind)
    else:
        shared = {v.transition for v in area.members}
        transition = shared.pop() if len(shared) == 1 else Transition.UPDATE
        if not references:
            transition = Transition.NEW
    allowed = msg_types_for(transition)
    msg_type = "Update" if references and "Update" in allowed else allowed[0]
    sent = record.sent.astimezone(tz)
    ends = transition.ends
    effective = warning.effective.astimezone(tz) if warning and warning.effective else sent
    first = places[area.members[0].village_code]
    return CapMessage(
        identifier=record.identifier,
        sender=sender,
        sent=sent,
        status="Exercise" if area.key.exercise else "Actual",
        msg_type=msg_type,
        references=references,
        level=area.key.level,
        transition=transition,
        event=warning.event if warning else "Peringatan cuaca",
        effective=min(effective, sent) if ends else effective,
        expires=warning.expires.astimezone(tz) if warning and warning.expires else None,
        source_warning_id=lead.warning_id,
        source_web=warning.web if isinstance(warning, Warning) else "",
        issuer=issuer_of(warning, config.command_center.issuer)[0],
        hazard=area.key.hazard,
        area=CapArea(
            area.key.kecamatan,
            first.name,
            first.kecamatan,
            first.kabkota,
            None,
            tuple(polygons),
            members=tuple((v.village_code, places[v.village_code].name) for v in area.members),
        ),
        zone_name=zone,
    )
