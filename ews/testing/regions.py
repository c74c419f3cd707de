"""Region files with fictional subscribers, for tests and benchmarks on the real boundaries in shared data."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def write_subscribed_region(
    folder: Path,
    layer: Path,
    subscribers: Iterable[tuple[str, str]],
    *,
    region_id: str = "gorontalo-kec",
    name: str = "Gorontalo",
    province_code: str = "75",
) -> Path:
    """Write a region file over the boundary ``layer`` with one SMS subscriber per ``(phone, village code)``.

    ``<folder>/subscribers.csv`` holds the subscribers (consent given); the layer's features carry ``kode`` and
    ``nama``. Returns the region file. Give fictional numbers only: they end up in stores, outboxes and a local
    Twilio server.
    """
    rows = ["phone,village_code,language,channel,consent_source,consent_time"]
    rows += [f"{phone},{code},id,sms,test,2026-01-01T00:00:00+08:00" for phone, code in subscribers]
    (folder / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    region = folder / f"{region_id}.yaml"
    region.write_text(
        f"id: {region_id}\nname: {name}\nprovince_code: '{province_code}'\n"
        f"boundaries: {{path: {json.dumps(str(layer))}, id_field: kode, name_field: nama}}\n"
        f"subscribers: {json.dumps(str(folder / 'subscribers.csv'))}\n",
        encoding="utf-8",
    )
    return region
