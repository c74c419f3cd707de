"""CAP output of a cycle: one CAP 1.2 message per alert version that went out, and the Atom index of the active ones.

Edge composition (it reads the store and writes files): :mod:`ews.cap.writer` renders, this module decides which
messages a cycle publishes and reuses what was published before.

Cost per cycle (see docs/cap-output.md): the store is read in bulk (the written versions in one query per chunk,
the earlier versions they reference in one query per thread, headers per thread); only the messages this cycle
publishes are rendered, with each village's polygon text from :mod:`ews.store.cap_cache`; files are written
plainly into the staging folder, whose swap (:func:`ews.store.artifacts.atomic_folder`) makes them durable at once;
an active alert's unchanged file is hard-linked from the previous snapshot, never read. Which previous files can be
linked is told by the snapshot's :data:`MANIFEST` (identifier -> ``sent`` and SHA-256), not by opening them.
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
from ews.cap.writer import (
    CapArea,
    CapMessage,
    CapReference,
    FeedEntry,
    atom_feed_of,
    cap_time,
    feed_entry,
    msg_types_for,
    polygon_rings,
    to_cap_xml,
)
from ews.codes import local_zone
from ews.config import RegionConfig
from ews.errors import CapError
from ews.store.artifacts import link_or_copy, write_bytes_staged
from ews.store.cap_cache import cached_polygon_texts
from ews.store.repository import AlertVersionRecord, Store
from ews.store.warnings import WarningHeader
from ews.types import Warning

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
"""The CAP folder's list of its files: ``{"format": ..., "files": {identifier: record}}`` (see :class:`Listed`)."""
_MANIFEST_FORMAT = "ews-cap-manifest/2"


@dataclass(frozen=True)
class _Village:
    name: str
    kecamatan: str
    kabkota: str
    geometry: Any


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
) -> int:
    """Write the CAP files of a cycle into ``cap_dir``; return how many messages this cycle published.

    ``written_ids``: the alert versions that went out this cycle; every active alert's latest version is
    written too. ``by_id``: this cycle's warnings by identifier (the stored headers stand in for the others).
    ``previous_cap_dir``: the last published ``cap/`` folder, whose unchanged files are hard-linked.
    ``cap_dir`` is expected inside an :func:`ews.store.artifacts.atomic_folder` staging folder: its files are
    not fsync'ed one by one. ``cache_dir``: where the villages' polygon texts are kept between processes (the
    zonal weights' cache folder); ``None`` keeps them in this process only. ``active``: the region's active
    village states and their current versions, where the caller has them (else they are read).

    Raises
    ------
    CapError
        A version of a village that is not in ``villages``, or a message that cannot be written as CAP 1.2.
    """
    written = store.alert_versions(written_ids)
    states: Sequence[VillageState]
    if active is None:
        states = store.active_alerts(config.id)
        current: Sequence[AlertVersionRecord] = store.current_versions(
            config.id, [(s.thread_id, s.village_code, s.seq) for s in states]
        )
    else:
        states, current = active
    active_versions = [v for v in current if v.status in ("auto", "approved")]
    headers: dict[str, WarningHeader] = {}
    for thread in sorted({s.thread_id for s in states}):
        headers.update({h.identifier: h for h in store.warning_headers(thread)})
    places = _villages(villages, {v.village_code for v in (*written, *active_versions)})

    cap_dir.mkdir(parents=True, exist_ok=True)
    # A published CAP message never changes: an active version already in the previous snapshot is linked from
    # there, not rendered and validated again (thousands of villages under one rain thread). The same
    # identifier from another store (a database reset) would have another <sent>, so it is rendered anew.
    fresh = {v.cap_identifier for v in written}
    manifest: dict[str, Listed] = {}
    if previous_cap_dir is not None:
        previous = read_manifest(previous_cap_dir)
        for v in active_versions:
            listed = previous.get(v.cap_identifier)
            if v.cap_identifier in fresh or listed is None or listed.sent != _sent_text(v):
                continue
            name = f"{v.cap_identifier}.xml"
            # The file must still be the one listed (inode, size, modification time, as git's index checks a
            # working tree): one edited or replaced since is rendered again, and no file is read to tell.
            if _file_stat(previous_cap_dir / name) != listed.stat:
                continue
            if link_or_copy(previous_cap_dir / name, cap_dir / name):  # False: the file is gone, render it
                manifest[v.cap_identifier] = dataclasses.replace(listed, stat=_file_stat(cap_dir / name))
    kept = set(manifest)

    to_render = list(
        {v.cap_identifier: v for v in (*written, *active_versions) if v.cap_identifier not in kept}.values()
    )
    history = store.versions_by_village(config.id, {(v.thread_id, v.village_code) for v in to_render})

    def source_of(v: AlertVersionRecord) -> Warning | WarningHeader | None:
        return by_id.get(v.warning_id) or headers.get(v.warning_id)

    # Polygon text once per village outline (cached across cycles), named in errors by its first message.
    codes = list(dict.fromkeys(v.village_code for v in to_render))
    first: dict[str, str] = {}
    for v in to_render:
        first.setdefault(v.village_code, v.cap_identifier)
    texts = cached_polygon_texts(
        cache_dir,
        [places[c].geometry for c in codes],
        lambda i: polygon_rings(
            places[codes[i]].geometry, f"{first[codes[i]]}: village {codes[i]} {places[codes[i]].name}"
        ),
    )
    polygons = dict(zip(codes, texts, strict=True))

    for v in to_render:
        earlier = [e for e in history.get((v.thread_id, v.village_code), []) if e.seq < v.seq]
        message = cap_for(config, v, _area(v.village_code, places, polygons.get(v.village_code)), source_of(v), earlier)
        data = to_cap_xml(message)
        name = f"{v.cap_identifier}.xml"
        write_bytes_staged(cap_dir / name, data)
        entry = feed_entry(message, name)
        manifest[v.cap_identifier] = Listed(
            _sent_text(v), hashlib.sha256(data).hexdigest(), int(entry.sent.timestamp()), entry.xml,
            _file_stat(cap_dir / name),
        )  # fmt: skip
    # A kept message's feed entry comes from the manifest, as its file came from the last folder.
    feed = [manifest[v.cap_identifier].feed_entry(v.cap_identifier) for v in active_versions]
    write_bytes_staged(
        cap_dir / "index.atom",
        atom_feed_of(feed, feed_id=f"urn:ews:feed:{cap_dir.name}", title="ews: peringatan aktif", updated=now),
    )
    document = {"format": _MANIFEST_FORMAT, "files": {k: manifest[k].to_json() for k in sorted(manifest)}}
    write_bytes_staged(cap_dir / MANIFEST, json.dumps(document, separators=(",", ":")).encode())
    return len(written)


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


def _area(code: str, places: Mapping[str, _Village], polygons: tuple[str, ...] | None) -> CapArea:
    place = places.get(code)
    if place is None:
        raise CapError(
            f"an alert version names village {code}, which is not in the region's boundary file: "
            "restore the village or end its alert"
        )
    return CapArea(code, place.name, place.kecamatan, place.kabkota, place.geometry, polygons)


def cap_for(
    config: RegionConfig,
    version: AlertVersionRecord,
    area: CapArea,
    warning: Warning | WarningHeader | None,
    earlier: Sequence[AlertVersionRecord] = (),
) -> CapMessage:
    """The CAP message of one alert version.

    ``earlier``: the versions of that village's alert in that thread before this one (its ``<references>``);
    empty for a message used only in the Atom feed.
    """
    from ews.alerting import issuer_of  # the alert step imports this module

    tz, zone = local_zone(version.village_code)
    sender = f"ews.{config.id}"
    references = tuple(CapReference(sender, v.cap_identifier, v.created_at.astimezone(tz)) for v in earlier)
    allowed = msg_types_for(version.transition)
    msg_type = "Update" if version.transition is Transition.NEW and references and "Update" in allowed else allowed[0]
    sent = version.created_at.astimezone(tz)
    effective = warning.effective.astimezone(tz) if warning and warning.effective else sent
    return CapMessage(
        identifier=version.cap_identifier,
        sender=sender,
        sent=sent,
        status="Exercise" if version.exercise else "Actual",
        msg_type=msg_type,
        references=references,
        level=version.level_before if version.transition.ends else version.level,
        transition=version.transition,
        event=warning.event if warning else "Peringatan cuaca",
        effective=min(effective, sent) if version.transition.ends else effective,
        expires=warning.expires.astimezone(tz) if warning and warning.expires else None,
        source_warning_id=version.warning_id,
        source_web=warning.web if isinstance(warning, Warning) else "",
        issuer=issuer_of(warning, config.command_center.issuer)[0],
        hazard=version.hazard or "cuaca",
        area=area,
        zone_name=zone,
    )
