"""CAP area alerts: a region's village alerts grouped into one CAP alert per kecamatan area (pure).

A rain thread that puts 15,000 villages at Siaga is, for a CAP consumer, a few hundred places, not 15,000
alerts. ews therefore publishes one CAP ``<alert>`` per **area**: the villages of one thread that the message
describes alike (:class:`AreaKey`: the same kind — in force, or ended by all-clear, expiry or cancel —, level,
exercise flag and hazard), in one **kecamatan** (the first three parts of the Kemendagri code, the unit BMKG names
in its warnings), and **contiguous** (outlines within :data:`TOUCH_DEGREES` of each other, which absorbs
digitising slivers). An island, or a kecamatan split by a village at another level, gives separate alerts, as
Google's CAP requirements ask of non-contiguous areas.

An area's polygon is the union of its villages' outlines, exterior rings only (an enclave at another level is
inside it: errs towards warning too many), simplified topology-preserving only when a ring has more than
:data:`AREA_MAX_VERTICES` points. Its identity is :func:`area_digest` of its key and its members' alert versions:
an area whose digest is unchanged is the same message; any change (a member's new version, a village joining or
leaving) is a new area alert that references the ones it replaces (:mod:`ews.cap_output`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from ews.cap.writer import AREA_DESC_MAX, area_desc, cap_time, polygon_rings
from ews.errors import CapError
from ews.types import Level

__all__ = [
    "AREA_DESC_MAX",
    "AREA_MAX_VERTICES",
    "AREA_TEXT_VERSION",
    "IN_FORCE",
    "TOUCH_DEGREES",
    "AreaKey",
    "area_desc",
    "area_digest",
    "area_identifier",
    "area_outline",
    "area_polygons",
    "components",
    "kecamatan_of",
]

AREA_MAX_VERTICES = 1000
"""Most points of one ``<polygon>`` of an area alert; a larger ring is simplified until it fits."""
TOUCH_DEGREES = 1e-5
"""Outlines closer than this (about 1.1 m) are neighbours: digitising slivers between villages do not split an area."""
AREA_TEXT_VERSION = 2
"""Version of :func:`area_polygons`' output: raise it when the text it writes for a set of outlines changes."""
IN_FORCE = "in-force"
"""The :attr:`AreaKey.kind` of an alert that is announced (not ended)."""
_SIMPLIFY = TOUCH_DEGREES / 4  # degrees (~28 cm): members are simplified this much before they are united
_FIRST_TOLERANCE = 1e-4  # degrees (~11 m), doubled until every ring fits the budget
_MAX_ROUNDS = 24


@dataclass(frozen=True, order=True)
class AreaKey:
    """What the villages of one area alert share: the message says the same of each of them.

    ``kind``: :data:`IN_FORCE`, or the transition that ends the alert (``all-clear``, ``expire``, ``cancel``);
    ``level``: the level announced, or the level that ends.
    """

    thread_id: str
    kind: str
    level: Level
    exercise: bool
    hazard: str
    kecamatan: str


def kecamatan_of(code: str) -> str:
    """The kecamatan code of a Kemendagri code (``35.78.01.1001`` -> ``35.78.01``); a shorter code is its own."""
    return ".".join(code.split(".")[:3])


def components(
    keys: Sequence[Hashable], geometries: Sequence[BaseGeometry], distance: float = TOUCH_DEGREES
) -> list[list[int]]:
    """Indices of the same key whose outlines are connected (within ``distance``), one list per area, each sorted.

    One spatial index over every outline, one query of it by bounding boxes, and one vectorised ``dwithin`` test
    of the candidate pairs of the same key (each pair once); neighbours of another key are not joined. Areas come
    in the order of their first index.
    """
    n = len(keys)
    if n == 0:
        return []
    if len(geometries) != n:
        raise ValueError(f"{n} keys but {len(geometries)} outlines")
    ids: dict[Hashable, int] = {}
    key_id = np.fromiter((ids.setdefault(k, len(ids)) for k in keys), dtype=np.int64, count=n)
    shapes = np.asarray(geometries, dtype=object)
    tree = shapely.STRtree(shapes)
    # Candidates by bounding box (grown by the distance), of the same key and each pair once; then the exact
    # distance test on those only: neighbours of another key are never measured.
    bounds = shapely.bounds(shapes) + np.array([-distance, -distance, distance, distance])
    left, right = tree.query(shapely.box(bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3]))
    keep = (left < right) & (key_id[left] == key_id[right])
    left, right = left[keep], right[keep]
    near = shapely.dwithin(shapes[left], shapes[right], distance)
    left, right = left[near], right[near]
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def area_digest(key: AreaKey, members: Sequence[tuple[str, int]]) -> str:
    """SHA-1 (hex) of an area's key and its members' ``(village_code, seq)``: equal digests, the same message."""
    text = "\n".join(
        [
            "ews.cap.area/1", key.thread_id, key.kind, key.level.label, "exercise" if key.exercise else "actual",
            key.hazard, key.kecamatan, *(f"{code}#{seq}" for code, seq in sorted(members)),
        ]
    )  # fmt: skip
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def area_identifier(region_id: str, thread_id: str, kecamatan: str, digest: str, sent: datetime) -> str:
    """The CAP ``<identifier>`` of an area alert: ``ews.<region>.<h(thread)>.<kecamatan code>.<token>``.

    ``h`` is the thread's 12-hex-digit SHA-1 prefix, as in :func:`ews.cap.writer.cap_identifier`; ``token`` the
    first 10 hex digits of the SHA-1 of the area's digest and its ``<sent>``, so the same villages announced again
    later (after being part of another area) are a new message with a new identifier. Only letters, digits and
    ``.`` occur; a village alert's identifier has a four-part code and a number instead, so the two never meet.
    """
    thread = hashlib.sha1(thread_id.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    token = hashlib.sha1(f"{digest}\n{cap_time(sent)}".encode(), usedforsecurity=False).hexdigest()[:10]
    return f"ews.{region_id}.{thread}.{kecamatan}.{token}"


def area_outline(geometries: Sequence[BaseGeometry]) -> BaseGeometry:
    """The union of the members' outlines without holes (a Polygon or MultiPolygon, lon/lat)."""
    parts = [g for g in geometries if g is not None and not g.is_empty]
    if not parts:
        raise CapError("an area without an outline: every member village has an empty geometry")
    union = _closed_union(np.asarray(parts, dtype=object))
    polygons = [p for p in shapely.get_parts(union) if isinstance(p, Polygon) and not p.is_empty]
    polygons += [q for m in shapely.get_parts(union) if isinstance(m, MultiPolygon) for q in m.geoms]
    shells = [Polygon(p.exterior) for p in polygons]
    if not shells:
        raise CapError("an area whose villages' outlines have no area (lines or points only)")
    if len(shells) == 1:
        return shells[0]
    # An island inside another part's shell (an enclave's enclave) adds nothing once holes are dropped.
    outer = [s for i, s in enumerate(shells) if not any(j != i and t.contains(s) for j, t in enumerate(shells))]
    return outer[0] if len(outer) == 1 else MultiPolygon(outer)


def _closed_union(parts: np.ndarray) -> BaseGeometry:
    """The union of ``parts``, gaps under :data:`TOUCH_DEGREES` closed (a morphological closing); one part simplified.

    Real neighbours are not noded edge to edge (they overlap and leave hairline gaps): a plain union is slow and
    full of slivers, a snapped one slower still. As :func:`ews.review.display.region_outline` does: each part
    simplified far below the text's precision (:data:`_SIMPLIFY`, ~28 cm; one that this would make invalid is
    simplified preserving its topology, an invalid one is repaired first), grown by :data:`TOUCH_DEGREES` with
    mitred corners, the grown parts united and the union shrunk back. Inlets narrower than twice the reach
    (~2 m) close up: far below the ~11 m of the written coordinates.
    """
    bad = ~shapely.is_valid(parts)
    if bad.any():
        parts = parts.copy()
        parts[bad] = shapely.make_valid(parts[bad])
    simple = np.asarray(shapely.simplify(parts, _SIMPLIFY, preserve_topology=False), dtype=object)
    broken = ~shapely.is_valid(simple)
    if broken.any():
        simple[broken] = shapely.simplify(parts[broken], _SIMPLIFY, preserve_topology=True)
    if len(simple) == 1:
        return simple[0]
    grown = shapely.buffer(simple, TOUCH_DEGREES, quad_segs=1, join_style="mitre")
    return shapely.buffer(shapely.union_all(grown), -TOUCH_DEGREES, quad_segs=1, join_style="mitre")


def area_polygons(geometries: Sequence[BaseGeometry], where: str, max_vertices: int = AREA_MAX_VERTICES) -> list[str]:
    """The ``<polygon>`` texts of an area: :func:`area_outline`, simplified until each ring has ``max_vertices``.

    Raises
    ------
    CapError
        Naming ``where``: no outline, or a ring that cannot be written (see :func:`polygon_rings`).
    """
    if max_vertices < 4:
        raise CapError(f"{where}: a CAP polygon needs at least 4 points; raise the vertex budget ({max_vertices})")
    outline = area_outline(geometries)
    shape, tolerance = outline, _FIRST_TOLERANCE
    for _ in range(_MAX_ROUNDS):
        texts = polygon_rings(shape, where)
        if max(t.count(" ") + 1 for t in texts) <= max_vertices:
            return texts
        shape = shapely.simplify(outline, tolerance, preserve_topology=True)
        tolerance *= 2
    raise CapError(f"{where}: the area's outline does not fit {max_vertices} points per polygon")
