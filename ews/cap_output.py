"""CAP output of a cycle: one CAP 1.2 message per alert version that went out, and the Atom index of the active ones.

Edge composition (it reads the store and writes files): :mod:`ews.cap.writer` renders, this module decides which
messages a cycle publishes and reuses what was published before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from ews.alerts.model import Transition
from ews.cap.writer import CapArea, CapMessage, CapReference, atom_feed, cap_time, msg_types_for, to_cap_xml
from ews.codes import local_zone
from ews.config import RegionConfig
from ews.store.repository import AlertVersionRecord, Store
from ews.store.warnings import WarningHeader
from ews.types import Warning


def publish_cap(
    store: Store,
    config: RegionConfig,
    villages: pd.DataFrame,
    written_ids: Sequence[int],
    by_id: Mapping[str, Warning],
    now: datetime,
    cap_dir: Path,
    previous_cap_dir: Path | None,
) -> int:
    """Write the CAP files of a cycle into ``cap_dir``; return how many messages this cycle published.

    ``written_ids``: the alert versions that went out this cycle; every active alert's latest version is
    written too. ``by_id``: this cycle's warnings by identifier (the stored headers stand in for the others).
    ``previous_cap_dir``: the last published ``cap/`` folder, whose unchanged files are reused.
    """
    by_code = villages.set_index("code")
    written = [store.alert_version(i) for i in written_ids]
    active = store.active_alerts(config.id)
    current = store.current_versions(config.id, [(s.thread_id, s.village_code, s.seq) for s in active])
    active_versions = [v for v in current if v.status in ("auto", "approved")]
    headers: dict[str, WarningHeader] = {}
    for thread in sorted({s.thread_id for s in active}):
        headers.update({h.identifier: h for h in store.warning_headers(thread)})
    # A published CAP message never changes: an active version already in the previous snapshot is copied
    # from there, not rendered and validated again (thousands of villages under one rain thread).
    fresh = {v.cap_identifier for v in written}
    kept: dict[str, bytes] = {}
    if previous_cap_dir is not None:
        for v in active_versions:
            old = previous_cap_dir / f"{v.cap_identifier}.xml"
            if v.cap_identifier in fresh or not old.is_file():
                continue
            data = old.read_bytes()
            # The same identifier from another store (a database reset) would have another <sent>.
            sent = cap_time(v.created_at.astimezone(local_zone(v.village_code)[0]))
            if f"<sent>{sent}</sent>".encode() in data:
                kept[v.cap_identifier] = data

    def message(v: AlertVersionRecord) -> CapMessage:
        source: Warning | WarningHeader | None = by_id.get(v.warning_id) or headers.get(v.warning_id)
        return cap_for(
            store, config, v, by_code.loc[v.village_code], source, with_references=v.cap_identifier not in kept
        )

    return write_cap_files(
        cap_dir, [message(v) for v in written], [message(v) for v in active_versions], now, kept=kept
    )


def cap_for(
    store: Store,
    config: RegionConfig,
    version: AlertVersionRecord,
    village: pd.Series,
    warning: Warning | WarningHeader | None,
    *,
    with_references: bool = True,
) -> CapMessage:
    """The CAP message of one alert version (references: the earlier versions of that village's alert).

    ``with_references=False`` skips looking them up, for a message used only in the Atom feed.
    """
    from ews.alerting import issuer_of  # the alert step imports this module

    tz, zone = local_zone(version.village_code)
    earlier = (
        [v for v in store.versions_of(config.id, version.thread_id, version.village_code) if v.seq < version.seq]
        if with_references
        else []
    )
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
        area=CapArea(
            version.village_code,
            str(village["name"]),
            str(village["kecamatan_name"]),
            str(village["kabkota_name"]),
            village["geometry"],
        ),
        zone_name=zone,
    )


def write_cap_files(
    folder: Path,
    messages: Sequence[CapMessage],
    active: Sequence[CapMessage],
    updated: datetime,
    *,
    kept: Mapping[str, bytes] | None = None,
) -> int:
    """Write each CAP message as ``<identifier>.xml`` and ``index.atom`` listing the active ones.

    ``kept``: identifier -> the bytes already published for it (written as they are, not rendered).
    """
    from ews.store.artifacts import write_bytes_atomic

    folder.mkdir(parents=True, exist_ok=True)
    kept = kept or {}
    for m in {m.identifier: m for m in (*messages, *active)}.values():
        data = kept.get(m.identifier)
        write_bytes_atomic(folder / f"{m.identifier}.xml", data if data is not None else to_cap_xml(m))
    feed = atom_feed(
        active,
        feed_id=f"urn:ews:feed:{folder.name}",
        title="ews: peringatan aktif",
        updated=updated,
        link_for=lambda m: f"{m.identifier}.xml",
    )
    write_bytes_atomic(folder / "index.atom", feed)
    return len(messages)
