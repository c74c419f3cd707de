"""Time to derive the tsunami coast of all Jawa Timur villages: from the land (cold, then cached) vs the outline.

Inputs: the 8,492 desa/kelurahan of Jawa Timur and the land around them as ``regions/jawa-timur.yaml``
configures it (the Jawa Tengah and Bali kecamatan), from the shared data. Timed, each several times in
this run (medians, these machines are noisy):

- *outline*: :func:`coastal_villages` on the villages alone (the named alternative: what ews did before
  the land, which calls land borders coast);
- *cold*: what a run does the first time: hash the villages and land files, read the land, leave out the
  region's own areas, derive the coast, write the cache file;
- *disk*: a new process with the cache folder (hash, read the cache file);
- *memory*: the same worker again (hash only).

Run:  .venv/bin/python bench/coast.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ews.config import open_region
from ews.exposure.coverage import VillageLayer
from ews.hazard.earthquake import coast_key, coastal_villages, surrounding_land
from ews.ingest.boundaries import digest_land_files, list_land_files, read_boundaries, read_land
from ews.store import coast_cache

REPO = Path(__file__).resolve().parents[1]


def cached(layer: VillageLayer, land: list[Path], cache: Path) -> tuple[float, str, int]:
    t0 = time.perf_counter()
    codes = layer.table["code"].astype(str).tolist()
    key = coast_key(codes, layer.table.geometry.values, f"kode:{digest_land_files(land)}")

    def derive() -> coast_cache.Coast:
        around = surrounding_land(read_land(land), codes)
        return coast_cache.Coast(frozenset(coastal_villages(layer, land=around.land.geometry)))

    found = coast_cache.cached_coast(cache, key, derive)
    return time.perf_counter() - t0, found.origin, len(found.coast.codes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shared = Path(os.environ.get("EWS_SHARED_DATA", "../shared/data")).resolve()
    folder = shared / "boundaries/wilayah_boundaries_geojson/kel/35"
    if not folder.is_dir():
        print(f"bench/coast.py: shared data not found at {shared}; set EWS_SHARED_DATA", file=sys.stderr)
        return 2
    config = open_region(REPO / "regions" / "jawa-timur.yaml", {"EWS_SHARED_DATA": str(shared)})
    layer = VillageLayer.from_villages(read_boundaries(folder))
    land = list_land_files(config.earthquake.land or ())
    print(f"inputs: {len(layer.table):,} villages of Jawa Timur; land: {', '.join(f.name for f in land)}")

    outline, cold, disk, memory = [], [], [], []
    counts: dict[str, int] = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        counts["outline"] = len(coastal_villages(layer))
        outline.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            for times, expect in ((cold, "computed"), (disk, "disk"), (memory, "memory")):
                if expect != "memory":
                    coast_cache._MEMORY.clear()  # a new process
                seconds, origin, n = cached(layer, land, Path(tmp))
                if origin != expect:
                    print(f"UNEXPECTED: {origin} where {expect} was due", file=sys.stderr)
                    return 1
                counts["land"] = n
                times.append(seconds)
    o, c, d, m = (statistics.median(x) for x in (outline, cold, disk, memory))
    print(f"coastal villages: {counts['land']} from the land, {counts['outline']} from the outline alone")
    print(f"median of {args.repeat} runs:")
    print(f"  outline of the villages alone (before)      : {o * 1000:8.0f} ms")
    print(f"  from the land, cold (read, derive, save)    : {c * 1000:8.0f} ms   ratio cold/outline = {c / o:5.2f}x")
    print(f"  from the land, cache file (a new process)   : {d * 1000:8.0f} ms   ratio outline/disk = {o / d:5.1f}x")
    print(f"  from the land, memory (the same worker)     : {m * 1000:8.0f} ms   ratio outline/memory = {o / m:5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
