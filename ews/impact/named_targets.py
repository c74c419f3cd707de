"""The kecamatan a BMKG warning names, against the region's villages (pure).

Two uses, both through :func:`ews.exposure.named_areas.match_named_areas`:

- **the run report**: per warning, the named kecamatan its polygons hardly cover and the kecamatan they
  cover at least half but that the text does not name (a wrong name, an outdated polygon, a wrong match);
- **locating a warning without a usable polygon**: every polygon was degenerate, or there was none. The
  warning is then placed on the kecamatan named in its description, matched within the region's province
  (ambiguous names resolved by nearness to whatever the polygons still say about the location), and the
  run says so loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from ews.codes import local_zone
from ews.errors import DataValidationError
from ews.exposure.named_areas import Candidate, CandidateIndex, match_named_areas, named_area_gaps
from ews.types import Warning


@dataclass(frozen=True)
class NameTarget:
    """Where the named kecamatan of a warning put it: the area (empty if none matched) and what to report."""

    geometry: BaseGeometry
    codes: tuple[str, ...]
    notes: tuple[str, ...]


def kecamatan_index(villages: pd.DataFrame) -> CandidateIndex:
    """The region's kecamatan as match candidates: code, name and their villages' polygons (collected).

    ``villages`` has ``kecamatan``, ``kecamatan_name`` and ``geometry`` (EPSG:4326). A region whose areas are
    kecamatan themselves gives one candidate per area.
    """
    candidates = []
    for code, group in villages.groupby("kecamatan", sort=True):
        parts = shapely.get_parts(group.geometry.to_numpy())
        candidates.append(Candidate(str(code), str(group["kecamatan_name"].iloc[0]), shapely.multipolygons(parts)))
    return CandidateIndex.from_candidates(candidates)


def kecamatan_coverage(rows: pd.DataFrame, villages: pd.DataFrame, warning_id: str) -> dict[str, float]:
    """Share (0-1) of each kecamatan's area that a warning's polygons cover, from its impact rows."""
    mine = rows[rows["warning_id"] == warning_id] if len(rows) else rows
    if not len(mine):
        return {}
    covered = mine.groupby("kecamatan")["covered_km2"].sum()
    total = villages.groupby("kecamatan")["area_km2"].sum()
    return {str(k): float(min(1.0, covered[k] / total[k])) for k in covered.index if k in total and total[k] > 0}


def _warning_province(warning: Warning) -> str | None:
    """The province code in a BMKG identifier (``…YYYY.MM.DD.HH.PP.SSS``), when it is one."""
    fields = warning.identifier.split(".")
    if len(fields) == 12 and len(fields[10]) == 2 and fields[10].isdigit():
        try:
            local_zone(fields[10])
        except (DataValidationError, ValueError):
            return None
        return fields[10]
    return None


def named_area_notes(
    warning: Warning, coverage: Mapping[str, float], index: CandidateIndex, province: str
) -> tuple[str, ...]:
    """Run-report lines for a located warning: named areas not covered, covered areas not named."""
    if not warning.named_areas:
        return ()
    match = match_named_areas(warning.named_areas, index, province=province, coverage=coverage, hint=warning.geometry)
    gaps = named_area_gaps(match, coverage, candidates=index)
    return tuple(f"{warning.identifier}: {n}" for n in gaps.to_notes())  # gaps also list the unmatched names


def target_by_name(warning: Warning, index: CandidateIndex, province: str, hint: BaseGeometry | None) -> NameTarget:
    """The area of the kecamatan a warning without usable polygons names, within ``province``.

    ``hint`` is what the unusable polygons still say about the location (e.g. a degenerate polygon's points):
    it resolves a name that several kecamatan of the province share.
    """
    own = _warning_province(warning)
    if own is not None and own != province:
        return NameTarget(shapely.Polygon(), (), (
            f"{warning.identifier}: no usable polygon, and its identifier names province {own}, not {province}: "
            "not placed in this region",
        ))  # fmt: skip
    match = match_named_areas(warning.named_areas, index, province=province, hint=hint)
    codes = match.codes
    notes = [f"{warning.identifier}: {n}" for n in match.notes]
    if match.unmatched:
        notes.append(f"{warning.identifier}: named kecamatan not found in province {province}: "
                     f"{', '.join(match.unmatched)}")  # fmt: skip
    if not codes:
        return NameTarget(shapely.Polygon(), (), tuple(notes))
    shapes = [index.by_code[c].geometry for c in codes if index.by_code[c].geometry is not None]
    area = shapely.union_all([shapely.make_valid(g) for g in shapes]) if shapes else shapely.Polygon()
    return NameTarget(area, tuple(codes), tuple(notes))
