"""Time to intersect one warning with all Jawa Timur villages: ews vs a plain geopandas.overlay.

Both sides get the same inputs (the 8,492 desa/kelurahan polygons of Jawa Timur from the shared data
and one BMKG-style warning) and must give the same fractions; each is timed several times in this
run and the medians are compared, because these machines are noisy.

The warning is built the way BMKG draws nowcasts: the union of a few kecamatan (here 8 in Malang
and Batu) written with 3 decimals, plus the thin edges that touch neighbours.

Run:  .venv/bin/python bench/affected.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from ews.exposure.coverage import EQUAL_AREA, VillageLayer, village_coverage
from ews.ingest.boundaries import read_boundaries


def bmkg_like_warning(shared: Path) -> shapely.Geometry:
    kec = read_boundaries(shared / "boundaries/wilayah_boundaries_geojson/kec/wilayah_boundaries_kec_35.geojson")
    chosen = kec[kec["code"].isin([f"35.07.{n:02d}" for n in (1, 2, 3, 4, 5, 6)] + ["35.79.01", "35.79.02"])]
    union = shapely.union_all(chosen.geometry.values)
    return shapely.set_precision(union, 0.001)  # BMKG writes 3 decimals


def with_ews(villages: gpd.GeoDataFrame, warning: shapely.Geometry) -> tuple[float, float, np.ndarray]:
    t0 = time.perf_counter()
    layer = VillageLayer.from_villages(villages)
    t1 = time.perf_counter()
    rows = village_coverage(layer, warning)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, rows.set_index("code")["fraction"].sort_index().to_numpy()


def with_overlay(villages: gpd.GeoDataFrame, warning: shapely.Geometry) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    v = villages[["code", "geometry"]].to_crs(EQUAL_AREA)
    v["village_area"] = v.area
    w = gpd.GeoDataFrame({"warning": [1]}, geometry=[warning], crs="EPSG:4326").to_crs(EQUAL_AREA)
    pieces = gpd.overlay(v, w, how="intersection", keep_geom_type=True)
    pieces["fraction"] = pieces.area / pieces["village_area"]
    result = pieces.groupby("code")["fraction"].sum().clip(upper=1.0)
    t1 = time.perf_counter()
    return t1 - t0, result[result > 0].sort_index().to_numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    shared = Path(os.environ.get("EWS_SHARED_DATA", "../shared/data")).resolve()
    folder = shared / "boundaries/wilayah_boundaries_geojson/kel/35"
    if not folder.is_dir():
        print(f"bench/affected.py: shared data not found at {shared}; set EWS_SHARED_DATA", file=sys.stderr)
        return 2
    villages = read_boundaries(folder)
    warning = bmkg_like_warning(shared)
    points = shapely.get_num_coordinates(warning)
    print(f"inputs: {len(villages):,} villages of Jawa Timur; one warning of {points:,} points")

    prep, query, ovl = [], [], []
    for _ in range(args.repeat):
        p, q, ours = with_ews(villages, warning)
        o, theirs = with_overlay(villages, warning)
        prep.append(p)
        query.append(q)
        ovl.append(o)
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, atol=1e-9):
        print(f"MISMATCH: ews found {ours.shape[0]} villages, overlay {theirs.shape[0]}", file=sys.stderr)
        return 1
    p, q, o = (statistics.median(x) for x in (prep, query, ovl))
    print(f"villages touched: {ours.shape[0]} (both methods agree to 1e-9)")
    print(f"median of {args.repeat} runs:")
    print(f"  geopandas.overlay (project + overlay + areas) : {o * 1000:8.1f} ms")
    print(f"  ews village_coverage, layer prepared          : {q * 1000:8.1f} ms   ratio overlay/ews = {o / q:5.1f}x")
    print(
        f"  ews including layer preparation ({p * 1000:.0f} ms once per run): {(p + q) * 1000:8.1f} ms"
        f"   ratio overlay/ews = {o / (p + q):5.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
