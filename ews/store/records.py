"""Plain-JSON records of domain objects, for files passed between pipeline tasks."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import shapely

from ews.types import HazardMessage, Level, VillageHazard, Warning, WarningAlias


def warning_to_record(w: Warning) -> dict[str, Any]:
    """A JSON-safe dict of a warning (times ISO 8601 with offset, geometry as WKT)."""
    return {
        "identifier": w.identifier,
        "sender": w.sender,
        "sent": w.sent.isoformat(),
        "status": w.status,
        "msg_type": w.msg_type,
        "references": list(w.references),
        "language": w.language,
        "event": w.event,
        "urgency": w.urgency,
        "severity": w.severity,
        "certainty": w.certainty,
        "effective": w.effective.isoformat() if w.effective else None,
        "expires": w.expires.isoformat() if w.expires else None,
        "headline": w.headline,
        "description": w.description,
        "web": w.web,
        "area_desc": w.area_desc,
        "geometry": shapely.to_wkt(w.geometry, rounding_precision=-1),
        "polygon_count": w.polygon_count,
        "source": w.source,
        "named_areas": list(w.named_areas),
        "notes": list(w.notes),
        "event_code": w.event_code,
        "content_key": w.content_key,
        "unusable_polygons": w.unusable_polygons,
        "aliases": [[a.identifier, a.source, a.language, a.event, a.headline] for a in w.aliases],
        "location_hint": shapely.to_wkt(w.location_hint, rounding_precision=-1) if w.location_hint else None,
    }


def warning_from_record(r: dict[str, Any]) -> Warning:
    """Inverse of :func:`warning_to_record`."""

    def when(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v) if v else None

    return Warning(
        identifier=r["identifier"],
        sender=r["sender"],
        sent=datetime.fromisoformat(r["sent"]),
        status=r["status"],
        msg_type=r["msg_type"],
        references=tuple(r["references"]),
        language=r["language"],
        event=r["event"],
        urgency=r["urgency"],
        severity=r["severity"],
        certainty=r["certainty"],
        effective=when(r["effective"]),
        expires=when(r["expires"]),
        headline=r["headline"],
        description=r["description"],
        web=r["web"],
        area_desc=r["area_desc"],
        geometry=shapely.from_wkt(r["geometry"]),
        polygon_count=r["polygon_count"],
        source=r["source"],
        named_areas=tuple(r["named_areas"]),
        notes=tuple(r["notes"]),
        event_code=r.get("event_code", ""),
        content_key=r.get("content_key", ""),
        unusable_polygons=int(r.get("unusable_polygons", 0)),
        aliases=tuple(WarningAlias(*a) for a in r.get("aliases", ())),
        location_hint=shapely.from_wkt(r["location_hint"]) if r.get("location_hint") else None,
    )


def hazard_to_record(h: HazardMessage) -> dict[str, Any]:
    """A JSON-safe dict of a hazard message (NaN values become null)."""

    def num(x: float) -> float | None:
        return None if math.isnan(x) else x

    return {
        "warning": warning_to_record(h.warning),
        "metric": h.metric,
        "villages": [
            [v.code, int(v.level), int(v.held), num(float(v.value)), float(v.fraction), v.cause] for v in h.villages
        ],
        "details": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in dict(h.details).items()},
    }


def hazard_from_record(r: dict[str, Any]) -> HazardMessage:
    """Inverse of :func:`hazard_to_record`."""
    return HazardMessage(
        warning=warning_from_record(r["warning"]),
        metric=r["metric"],
        villages=tuple(
            VillageHazard(
                str(row[0]),
                Level(row[1]),
                Level(row[2]),
                math.nan if row[3] is None else float(row[3]),
                float(row[4]),
                str(row[5]) if len(row) > 5 else "",
            )
            for row in r["villages"]
        ),
        details=dict(r["details"]),
    )
