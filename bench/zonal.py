"""Zonal statistics at national scale: ews vs exactextract vs rasterstats vs a one-pass numpy floor.

The national set is synthetic but shaped like Indonesia's: about 84,000 desa/kelurahan as Voronoi cells
of points scattered over island-shaped areas (Java densest, Papua sparsest: village sizes from a few
km2 to hundreds), their edges cut to about 100 vertices per village (the mean of the real Jawa Timur
boundaries is 98), and one 0.01 degree float32 rainfall raster over Indonesia's extent
(94.9-141.1 E, 11.1 S-6.1 N: 4,620 x 1,720 cells) with storm cells and some missing cells.

Every method runs in its own child process, so each one's peak memory (``ru_maxrss``) is its own;
each child loads the same files first and reports the resident size before it starts (the baseline).

- **ews**: setup = exact coverage weights for (grid, villages), cached; per raster = mean, max and
  frac_above:20 for all villages from the cached weights (median of several rasters).
- **exactextract**: mean, max and frac (its own setup is inside every call: it has no cache), on an
  in-memory NumPy raster source so that file reading is not counted.
- **rasterstats**: mean and max with ``all_touched=False`` (cell-centre sampling, not exact) on a
  subset of villages, extrapolated linearly to the whole set; the output says so.
- **floor**: ``numpy.nansum`` over the whole raster once: no statistic can beat one read of the data.

Run:  .venv/bin/python bench/zonal.py [--villages 84000] [--rasters 5] [--rasterstats-subset 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

# name, centre lon, centre lat, semi-axis lon (deg), semi-axis lat (deg), rotation (deg), villages
ISLANDS = [
    ("Sumatera", 101.8, -0.5, 7.6, 1.8, -40.0, 23000),
    ("Jawa", 110.3, -7.2, 4.8, 0.6, -5.0, 25000),
    ("Bali-Nusa Tenggara", 119.5, -8.7, 5.5, 0.35, -3.0, 6800),
    ("Kalimantan", 114.0, 0.3, 4.2, 3.6, 10.0, 7200),
    ("Sulawesi", 121.0, -2.0, 2.2, 3.4, 15.0, 11000),
    ("Maluku", 128.5, -3.2, 1.6, 0.8, 0.0, 3200),
    ("Papua", 136.0, -4.3, 4.4, 2.2, -10.0, 7800),
]
EXTENT = (94.9, -11.1, 141.1, 6.1)
CELL = 0.01


def synthetic_villages(total: int, seed: int = 2026) -> tuple[list[str], np.ndarray]:
    """Village codes and polygons (lon/lat) over island-shaped areas, about 100 vertices each."""
    rng = np.random.default_rng(seed)
    scale = 1.02 * total / sum(i[-1] for i in ISLANDS)  # Voronoi cells clipped to the coast lose ~2 %
    codes: list[str] = []
    geoms: list[np.ndarray] = []
    for k, (_, lon, lat, ax, ay, rot, n) in enumerate(ISLANDS):
        n = max(10, round(n * scale))
        theta = np.radians(rot)
        # Points inside the (rotated) ellipse, denser towards its spine like real settlement.
        r = np.sqrt(rng.uniform(0, 1, n)) ** 1.3
        phi = rng.uniform(0, 2 * np.pi, n)
        px, py = ax * r * np.cos(phi), ay * r * np.sin(phi)
        x = lon + px * np.cos(theta) - py * np.sin(theta)
        y = lat + px * np.sin(theta) + py * np.cos(theta)
        t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
        wobble = 1 + 0.06 * np.sin(7 * t) + 0.03 * np.sin(23 * t)
        ex, ey = ax * np.cos(t) * wobble, ay * np.sin(t) * wobble
        island = shapely.Polygon(
            np.column_stack(
                [lon + ex * np.cos(theta) - ey * np.sin(theta), lat + ex * np.sin(theta) + ey * np.cos(theta)]
            )
        )
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(np.column_stack([x, y]))))
        cells = shapely.intersection(cells, island)
        cells = cells[~shapely.is_empty(cells) & (shapely.get_type_id(cells) == 3)]
        # Realistic vertex counts: ~100 per village (segmentize by a length that depends on the size).
        perimeter = shapely.length(cells)
        cells = np.array([shapely.segmentize(g, max(p / 100, 1e-4)) for g, p in zip(cells, perimeter, strict=True)])
        geoms.append(cells)
        codes.extend(f"9{k}.{i // 10000:02d}.{(i // 100) % 100:02d}.{2000 + i % 100}" for i in range(len(cells)))
    return codes, np.concatenate(geoms)


def synthetic_raster(seed: int) -> tuple[np.ndarray, tuple[float, float, float, float, float, float]]:
    """A 0.01 degree float32 rain rate field (mm/h) over the extent, with storms and missing cells."""
    rng = np.random.default_rng(seed)
    west, south, east, north = EXTENT
    cols, rows = round((east - west) / CELL), round((north - south) / CELL)
    x = west + (np.arange(cols, dtype=np.float32) + 0.5) * CELL
    y = north - (np.arange(rows, dtype=np.float32) + 0.5) * CELL
    field = rng.gamma(0.6, 1.5, size=(rows, cols)).astype(np.float32)
    for _ in range(40):
        cx, cy = rng.uniform(west, east), rng.uniform(south, north)
        s, peak = rng.uniform(0.2, 1.2), rng.uniform(10, 60)
        gx = np.exp(-(((x - cx) / s) ** 2))
        gy = np.exp(-(((y - cy) / s) ** 2))
        field += (peak * np.outer(gy, gx)).astype(np.float32)
    field[rng.uniform(size=field.shape) < 0.001] = np.nan
    return field, (CELL, 0.0, west, 0.0, -CELL, north)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(workdir: Path) -> tuple[list[str], np.ndarray, list[np.ndarray], tuple[float, ...]]:
    codes = json.loads((workdir / "codes.json").read_text())
    blob = (workdir / "villages.wkb").read_bytes()
    ends = np.load(workdir / "villages_ends.npy")
    starts = np.concatenate([[0], ends[:-1]])
    geoms = shapely.from_wkb(np.array([blob[a:b] for a, b in zip(starts, ends, strict=True)], dtype=object))
    rasters = [np.load(p) for p in sorted(workdir.glob("raster_*.npy"))]
    transform = tuple(json.loads((workdir / "transform.json").read_text()))
    return codes, geoms, rasters, transform


def child(method: str, workdir: Path, subset: int) -> dict[str, object]:
    """Run one method in this process and return its figures."""
    codes, geoms, rasters, transform = _load(workdir)
    baseline = _peak_mb()
    out: dict[str, object] = {"method": method, "baseline_mb": baseline}
    if method == "floor":
        times = []
        for r in rasters:
            t0 = time.perf_counter()
            float(np.nansum(r))
            times.append(time.perf_counter() - t0)
        out["per_raster_s"] = statistics.median(times)
    elif method == "ews":
        from ews.exposure.zonal import Grid, coverage_weights, parse_stats, zonal_stats

        t0 = time.perf_counter()
        grid = Grid((transform[0], 0.0, transform[2], 0.0, transform[4], transform[5]), rasters[0].shape)
        weights = coverage_weights(grid, codes, geoms)
        out["setup_s"] = time.perf_counter() - t0
        out["nnz"] = weights.nnz
        stats = parse_stats("mean,max,frac_above:20")
        times = []
        for r in rasters:
            t0 = time.perf_counter()
            result = zonal_stats(weights, r, stats)
            times.append(time.perf_counter() - t0)
        out["per_raster_s"] = statistics.median(times)
        first = zonal_stats(weights, rasters[0], stats)
        np.save(workdir / "ews_mean.npy", first["mean"])
        np.save(workdir / "ews_max.npy", first["max"])
    elif method == "exactextract":
        import geopandas as gpd
        from exactextract import exact_extract
        from exactextract.raster import NumPyRasterSource

        west, north = transform[2], transform[5]
        rows, cols = rasters[0].shape
        frame = gpd.GeoDataFrame({"code": codes}, geometry=geoms, crs="EPSG:4326")
        times = []
        first = None
        for r in rasters[:2]:  # ~10-30 s each: two are enough for a median of a stable figure
            src = NumPyRasterSource(
                r, west, north - rows * CELL, west + cols * CELL, north, nodata=np.nan, srs_wkt=None
            )
            t0 = time.perf_counter()
            result = exact_extract(src, frame, ["mean", "max", "frac"], include_cols=["code"], output="pandas")
            times.append(time.perf_counter() - t0)
            first = result if first is None else first
        out["per_raster_s"] = statistics.median(times)
        assert first is not None
        np.save(workdir / "ee_mean.npy", first["mean"].to_numpy(dtype=float))
        np.save(workdir / "ee_max.npy", first["max"].to_numpy(dtype=float))
    elif method == "rasterstats":
        from rasterio.transform import Affine
        from rasterstats import zonal_stats as rs_zonal

        rng = np.random.default_rng(1)
        pick = rng.choice(len(geoms), size=min(subset, len(geoms)), replace=False)
        affine = Affine(*transform)
        t0 = time.perf_counter()
        rs_zonal(list(geoms[pick]), rasters[-1], affine=affine, stats=["mean", "max"], nodata=np.nan)
        elapsed = time.perf_counter() - t0
        out["subset"] = int(pick.size)
        out["subset_s"] = elapsed
        out["per_raster_s"] = elapsed * len(geoms) / pick.size
    out["peak_mb"] = _peak_mb()
    return out


def run_child(method: str, workdir: Path, subset: int) -> dict[str, object]:
    proc = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "--child", method, "--workdir", str(workdir), "--rasterstats-subset", str(subset)],
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed:\n{proc.stderr}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--villages", type=int, default=84000)
    parser.add_argument("--rasters", type=int, default=5)
    parser.add_argument("--rasterstats-subset", type=int, default=2000)
    parser.add_argument("--child")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--skip", default="", help="comma-separated methods to leave out, e.g. exactextract")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.workdir, args.rasterstats_subset)))
        return 0

    with tempfile.TemporaryDirectory(prefix="ews-bench-zonal-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        codes, geoms = synthetic_villages(args.villages)
        vertices = shapely.get_num_coordinates(geoms)
        wkb = shapely.to_wkb(geoms)
        (work / "villages.wkb").write_bytes(b"".join(wkb))
        np.save(work / "villages_ends.npy", np.cumsum([len(b) for b in wkb]))
        (work / "codes.json").write_text(json.dumps(codes))
        transform: tuple[float, ...] = ()
        for k in range(args.rasters):
            raster, transform = synthetic_raster(seed=k)
            np.save(work / f"raster_{k}.npy", raster)
        (work / "transform.json").write_text(json.dumps(list(transform)))
        shape = np.load(work / "raster_0.npy", mmap_mode="r").shape
        print(
            f"synthetic national set: {len(codes):,} villages, {int(vertices.sum()):,} vertices "
            f"(mean {vertices.mean():.0f} per village), raster {shape[1]:,} x {shape[0]:,} cells of {CELL} deg "
            f"float32, {args.rasters} rasters (made in {time.perf_counter() - t0:.1f} s)"
        )
        methods = [m for m in ("floor", "ews", "exactextract", "rasterstats") if m not in args.skip.split(",")]
        results = {m: run_child(m, work, args.rasterstats_subset) for m in methods}

        floor = float(results["floor"]["per_raster_s"])  # type: ignore[arg-type]
        ews = results.get("ews", {})
        print()
        print(f"{'method':<14}{'setup s':>10}{'per raster ms':>16}{'x floor':>10}{'peak MB':>10}{'baseline MB':>13}")
        for m, r in results.items():
            per = float(r["per_raster_s"])  # type: ignore[arg-type]
            setup = f"{float(r['setup_s']):.2f}" if "setup_s" in r else "-"  # type: ignore[arg-type]
            note = ""
            if m == "rasterstats":
                note = f"  (extrapolated from {r['subset']:,} villages in {float(r['subset_s']):.1f} s)"  # type: ignore[arg-type]
            print(
                f"{m:<14}{setup:>10}{per * 1000:>16.1f}{per / floor:>10.1f}"
                f"{float(r['peak_mb']):>10.0f}{float(r['baseline_mb']):>13.0f}{note}"  # type: ignore[arg-type]
            )
        if ews:
            per_ews = float(ews["per_raster_s"])  # type: ignore[arg-type]
            print()
            print(f"ews per raster: {per_ews / floor:.1f}x the numpy floor (target <= 10x)")
            for m in ("exactextract", "rasterstats"):
                if m in results:
                    ratio = float(results[m]["per_raster_s"]) / per_ews  # type: ignore[arg-type]
                    print(f"ews per raster is {ratio:,.0f}x faster than {m}")
            print(f"ews peak memory {float(ews['peak_mb']):,.0f} MB (target < 2048 MB), nnz {ews['nnz']:,}")
            if "exactextract" in results:
                em, xm = np.load(work / "ews_mean.npy"), np.load(work / "ee_mean.npy")
                emax, xmax = np.load(work / "ews_max.npy"), np.load(work / "ee_max.npy")
                rel = np.nanmax(np.abs(em - xm) / np.maximum(np.abs(xm), 1e-12))
                max_rel = np.nanmax(np.abs(emax - xmax) / np.maximum(np.abs(xmax), 1e-12))
                print(
                    f"agreement with exactextract on raster 0: mean rel diff <= {rel:.1e}, "
                    f"max rel diff <= {max_rel:.1e}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
