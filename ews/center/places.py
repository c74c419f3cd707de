"""Where a report is from: a region's villages looked up by a shared location or by a place named in the text.

:class:`Gazetteer` is built once per region from its boundaries (the table of
:func:`ews.ingest.boundaries.read_boundaries`) and answers two questions:

- :meth:`Gazetteer.locate_many`: which village holds each (latitude, longitude) point (WGS84), vectorised over
  an STRtree of the village polygons; a point on a shared border gets the first village in code order.
- :meth:`Gazetteer.place_in`: the village (desa/kelurahan) or kecamatan a report's text names. Names and text
  are compared in :func:`ews.command.text.normal_form`. A name of two words or more counts anywhere in the
  text; a one-word name (at least four letters) only right after a place word (``desa``, ``kelurahan``,
  ``kel``, ``ds``, ``kecamatan``, ``kec``, ``di``, ``dekat``, ``in``, ``at``, ``near`` ...), so that "banjir di
  Kebraon" names Kebraon but a village called like a common word is not read into every text. ``kecamatan``/
  ``kec`` before a name look it up among kecamatan only, ``desa``/``kelurahan`` among villages only. A village
  name shared by several villages is resolved by a kecamatan named in the same text, else not used; only one
  unambiguous place is returned (two different villages named: none, the operator decides).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

from ews.codes import parent_code
from ews.command.text import normal_form
from ews.ingest.boundaries import read_area_names

if TYPE_CHECKING:
    import geopandas as gpd

    from ews.config import RegionConfig

_VILLAGE_CUES = frozenset({"desa", "kelurahan", "kel", "ds", "dusun", "kampung", "village"})
_KECAMATAN_CUES = frozenset({"kecamatan", "kec", "kcm", "district"})
_ANY_CUES = frozenset({"di", "dekat", "daerah", "wilayah", "sekitar", "in", "at", "near", "from", "dari"})
_NAME_PREFIXES = ("desa ", "kelurahan ", "kecamatan ")
_MIN_SINGLE = 4  # letters of a one-word name: shorter ones ("Ori") collide with chat words


@dataclass(frozen=True)
class Place:
    """A place of the region: a village (``level`` 4) or a kecamatan (``level`` 3), by Kemendagri code."""

    code: str
    name: str
    level: int


def _key(name: str) -> tuple[str, ...]:
    folded = normal_form(name)
    for prefix in _NAME_PREFIXES:
        folded = folded.removeprefix(prefix)
    return tuple(folded.split())


class Gazetteer:
    """A region's villages and kecamatan, by location and by name (see the module docstring).

    Parameters
    ----------
    codes, names
        The villages' Kemendagri codes and names, in the same order as ``geometries``.
    geometries
        The villages' polygons in EPSG:4326 (lon, lat).
    kecamatan_names
        ``kecamatan code -> name`` for the kecamatan of those villages (those missing are not looked up).
    """

    def __init__(
        self,
        codes: Sequence[str],
        names: Sequence[str],
        geometries: Sequence[shapely.Geometry],
        kecamatan_names: Mapping[str, str],
    ) -> None:
        order = sorted(range(len(codes)), key=lambda i: codes[i])
        self._codes = [codes[i] for i in order]
        self._names = {codes[i]: names[i] for i in order}
        self._tree = shapely.STRtree([geometries[i] for i in order])
        kecamatan = {parent_code(c, 3) for c in self._codes}
        self._kecamatan = {k: v for k, v in kecamatan_names.items() if k in kecamatan}
        self._villages_by_name: dict[tuple[str, ...], set[str]] = defaultdict(set)
        self._kecamatan_by_name: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for code, name in self._names.items():
            if key := _key(name):
                self._villages_by_name[key].add(code)
        for code, name in self._kecamatan.items():
            if key := _key(name):
                self._kecamatan_by_name[key].add(code)
        self._longest = max((len(k) for k in (*self._villages_by_name, *self._kecamatan_by_name)), default=1)

    @classmethod
    def from_villages(cls, villages: gpd.GeoDataFrame, area_names: Mapping[str, str] | None = None) -> Gazetteer:
        """From the table of :func:`ews.ingest.boundaries.read_boundaries` (its level-4 rows) and area names.

        Kecamatan are named by ``area_names``, else by the table's own level-3 rows or ``kecamatan_name``.
        """
        own = dict(zip(villages["code"], villages["name"], strict=True))
        rows = villages[villages["level"] == 4]
        kecamatan: dict[str, str] = {}
        if "kecamatan_name" in rows.columns:
            kecamatan.update(zip(rows["kecamatan"], rows["kecamatan_name"], strict=True))
        for code in set(rows["kecamatan"]):
            name = (area_names or {}).get(code) or own.get(code)
            if name:
                kecamatan[code] = name
        return cls(list(rows["code"]), list(rows["name"]), list(rows.geometry.values), kecamatan)

    @classmethod
    def from_region(cls, config: RegionConfig) -> Gazetteer:
        """Read the region's boundaries and area names (once, at start-up: Jawa Timur's take a few seconds).

        Raises
        ------
        BoundaryError
            The boundaries cannot be read (see :func:`ews.ingest.boundaries.read_boundaries`).
        DataValidationError
            An area-names file cannot be read.
        """
        from ews.ingest.boundaries import read_boundaries

        b = config.boundaries
        villages = read_boundaries(b.path, id_field=b.id_field, name_field=b.name_field, layer=b.layer)
        return cls.from_villages(villages, read_area_names(config.area_names))

    def __contains__(self, code: object) -> bool:
        return code in self._names or code in self._kecamatan

    def __len__(self) -> int:
        return len(self._codes)

    def name(self, code: str) -> str | None:
        """The name of a village or kecamatan of the region, or ``None``."""
        return self._names.get(code) or self._kecamatan.get(code)

    def locate(self, latitude: float, longitude: float) -> str | None:
        """The village holding the point (WGS84 degrees), or ``None`` outside the region."""
        return self.locate_many([latitude], [longitude])[0]

    def locate_many(self, latitudes: Sequence[float], longitudes: Sequence[float]) -> list[str | None]:
        """The village holding each point (one STRtree query for all), ``None`` where none does."""
        points = shapely.points(np.asarray(longitudes, dtype=float), np.asarray(latitudes, dtype=float))
        found: list[str | None] = [None] * len(points)
        hits = self._tree.query(points, predicate="intersects")
        for point, village in sorted(zip(hits[0].tolist(), hits[1].tolist(), strict=True)):
            if found[point] is None:  # sorted: the first village in code order on a shared border
                found[point] = self._codes[village]
        return found

    def place_in(self, text: str) -> Place | None:
        """The one village or kecamatan the text names unambiguously, or ``None`` (see the module docstring)."""
        words = normal_form(text).split()
        village_hits: list[set[str]] = []
        kecamatan_hits: set[str] = set()
        i = 0
        while i < len(words):
            before = words[i - 1] if i else ""
            step = 1
            for n in range(min(self._longest, len(words) - i), 0, -1):
                key = tuple(words[i : i + n])
                if n == 1 and (len(key[0]) < _MIN_SINGLE or before not in _VILLAGE_CUES | _KECAMATAN_CUES | _ANY_CUES):
                    continue
                villages = set() if before in _KECAMATAN_CUES else self._villages_by_name.get(key, set())
                kecamatan = set() if before in _VILLAGE_CUES else self._kecamatan_by_name.get(key, set())
                if not villages and not kecamatan:
                    continue
                if villages:
                    village_hits.append(villages)
                if len(kecamatan) == 1:
                    kecamatan_hits |= kecamatan
                step = n
                break
            i += step
        chosen: set[str] = set()
        for codes in village_hits:
            if len(codes) > 1 and kecamatan_hits:
                codes = {c for c in codes if parent_code(c, 3) in kecamatan_hits}
            if len(codes) == 1:
                chosen |= codes
        if len(chosen) == 1:
            code = next(iter(chosen))
            return Place(code, self._names[code], 4)
        if not chosen and len(kecamatan_hits) == 1:
            code = next(iter(kecamatan_hits))
            return Place(code, self._kecamatan[code], 3)
        return None
