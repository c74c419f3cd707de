"""Polygons as BMKG draws them: self-crossing ones are repaired and flagged, a useless one never drops the alert.

Runs go through the ``ews`` command on real boundaries: Kota Surabaya's kelurahan with the real kecamatan
outlines written as BMKG writes them, and the real Jawa Tengah fixture whose only polygon is degenerate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from hostile.conftest import CliResult, write_region
from hostile.test_feed_identity import ORIGINAL, bmkg_polygon, build

KEC = "boundaries/wilayah_boundaries_geojson/kec"


@pytest.fixture(scope="module")
def outlines(shared_data: Path) -> dict[str, str]:
    import geopandas as gpd

    kec = gpd.read_file(shared_data / KEC / "wilayah_boundaries_kec_35.geojson")
    rows = kec[kec["kode"].isin(["35.78.02", "35.78.22"])]
    return {c: bmkg_polygon(g) for c, g in zip(rows["kode"], rows.geometry, strict=True)}


def loop_at(ring: str, i: int) -> str:
    """A tiny loop (about 100 m) at vertex ``i`` of the outline: the line crosses itself, BMKG's typical defect."""
    points = ring.split()
    lat, lon = (float(v) for v in points[i].split(","))
    loop = [f"{lat + 0.001:.3f},{lon - 0.001:.3f}", f"{lat - 0.001:.3f},{lon - 0.001:.3f}"]
    return " ".join([*points[: i + 1], *loop, *points[i:]])


def crossing_on_edge(ring: str, i: int, d: float = 0.002) -> str:
    """Edge i -> i+1 drawn as A, E, F, B with E 80 % along (offset d) and F 20 % along (offset 2d).

    A-E and F-B cross two thirds of the way along the edge: the outline crosses itself slightly, the way a
    hand-drawn or simplified polygon does (BMKG's Kalimantan Utara alert has such crossings).
    """
    points = ring.split()
    (alat, alon), (blat, blon) = ((float(v) for v in points[k].split(",")) for k in (i, i + 1))
    nlat, nlon = -(blon - alon), blat - alat  # perpendicular to the edge
    norm = (nlat**2 + nlon**2) ** 0.5
    nlat, nlon = nlat / norm, nlon / norm

    def at(t: float, off: float) -> str:
        return f"{alat + t * (blat - alat) + off * nlat:.4f},{alon + t * (blon - alon) + off * nlon:.4f}"

    return " ".join([*points[: i + 1], at(0.8, d), at(0.2, 2 * d), *points[i + 1 :]])


def test_self_crossing_polygons_are_repaired_and_the_alert_kept(
    tmp_path: Path, shared_data: Path, outlines: dict[str, str], ews_cli: Callable[..., CliResult]
) -> None:
    template = (shared_data / "bmkg/cap/siaga_cap-id-CGT20260924002_alert.xml").read_bytes()
    polygons = [loop_at(outlines["35.78.02"], 1), crossing_on_edge(outlines["35.78.22"], 2)]
    cap = tmp_path / "cap.xml"
    cap.write_bytes(build(template, ORIGINAL, polygons, ["WONOCOLO", "GAYUNGAN"]))
    region = write_region(tmp_path / "region", shared_data)
    out = tmp_path / "out"
    db, outbox = f"sqlite:///{tmp_path / 'ews.db'}", tmp_path / "outbox.jsonl"
    at = "2026-11-28T17:30+07:00"
    result = ews_cli("run", "--region", region, "--cap", cap, "--out", out, "--at", at, "-q", "--database", db,
                     "--outbox", outbox)  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    repairs = [n for n in report["notes"] if "outline crosses itself" in n]
    assert len(repairs) == 2
    assert all("repaired (shapely.make_valid" in n and "area change" in n for n in repairs)
    assert any("polygon 1" in n for n in repairs)
    assert any("polygon 2" in n for n in repairs)
    assert "outline crosses itself" in result.log  # and in the log
    # The named kecamatan are recovered: both matched, and their kelurahan under the warning.
    summary = pd.read_csv(out / "summary.csv", dtype={"code": str})
    alerted = {c[:8] for c in summary.loc[summary["level"] > 0, "code"]}
    assert {"35.78.02", "35.78.22"} <= alerted
    assert not [n for n in report["notes"] if "not found" in n]


@pytest.fixture
def jawa_tengah(tmp_path: Path, shared_data: Path) -> Path:
    """A kecamatan-level Jawa Tengah region (576 kecamatan), as the shared data has it."""
    codes = shared_data / "wilayah_codes"
    region = tmp_path / "jawa-tengah.yaml"
    region.write_text(
        'id: jawa-tengah\nname: Jawa Tengah\nprovince_code: "33"\n'
        f"boundaries: {{path: {shared_data / KEC / 'wilayah_boundaries_kec_33.geojson'}, id_field: kode, "
        "name_field: nama}\n"
        f"population: {{method: kabkota_area_share, path: {codes / 'cahyadsn_wilayah_penduduk_prov_kab_2025.csv'}, "
        "id_field: kode, value_field: total}\n"
        f"area_names: [{codes / 'idn-area-data_districts.csv'}, {codes / 'idn-area-data_regencies.csv'}]\n"
    )
    return region


def test_alert_with_only_a_degenerate_polygon_is_located_by_its_named_kecamatan(
    tmp_path: Path, shared_data: Path, jawa_tengah: Path, ews_cli: Callable[..., CliResult]
) -> None:
    cap = shared_data / "bmkg/cap/dhanyyudi_cap_jateng.xml"
    out = tmp_path / "out"
    db, outbox = f"sqlite:///{tmp_path / 'ews.db'}", tmp_path / "outbox.jsonl"
    at = "2026-02-16T22:30+07:00"
    result = ews_cli("run", "--region", jawa_tengah, "--cap", cap, "--out", out, "--at", at, "-q", "--database", db,
                     "--outbox", outbox)  # fmt: skip
    assert result.code == 1  # finished, degraded: said loudly
    line = result.line_with("DEGRADED: no usable polygon: located by the", "dhanyyudi_cap_jateng.xml")
    assert "2.49.0.1.360.0.2026.02.16.16.45.005" in line
    summary = pd.read_csv(out / "summary.csv", dtype={"code": str})
    alerted = set(summary.loc[summary["level"] > 0, "code"])
    # Wiradesa, Kajen and Karanganyar of Kab. Pekalongan (the degenerate polygon lies there, which picks the
    # right one of five Karanganyar), and Kota Pekalongan's four kecamatan for "Pekalongan".
    assert {"33.26.16", "33.26.08", "33.26.07", "33.75.01", "33.75.02", "33.75.03", "33.75.04"} <= alerted
    assert not alerted & {"33.03.11", "33.05.20", "33.13.09", "33.21.09"}  # the other Karanganyar
    report = json.loads((out / "report.json").read_text())
    assert any("encloses no area" in p["message"] or "encloses no area" in n
               for p in report["problems"] for n in report["notes"])  # fmt: skip
    assert (out / "cap").is_dir()


def test_named_area_cross_check_understands_bmkg_spellings(
    tmp_path: Path, shared_data: Path, outlines: dict[str, str], ews_cli: Callable[..., CliResult]
) -> None:
    # Title-Case (older files), a "Kec." prefix with a period, and a typo (GAJUNGAN for Gayungan): all matched,
    # so the report flags only what is really wrong: a named kecamatan the polygons do not cover (Benowo).
    template = (shared_data / "bmkg/cap/siaga_cap-id-CGT20260924002_alert.xml").read_bytes()
    names = ["Wonocolo", "Kec. GAJUNGAN", "BENOWO"]
    cap = tmp_path / "cap.xml"
    cap.write_bytes(build(template, ORIGINAL, [outlines["35.78.02"], outlines["35.78.22"]], names))
    region = write_region(tmp_path / "region", shared_data)
    db, outbox = f"sqlite:///{tmp_path / 'ews.db'}", tmp_path / "outbox.jsonl"
    out = tmp_path / "out"
    result = ews_cli("run", "--region", region, "--cap", cap, "--out", out, "--at", "2026-11-28T17:30+07:00", "-q",
                     "--database", db, "--outbox", outbox)  # fmt: skip
    assert result.code == 0
    notes = json.loads((out / "report.json").read_text())["notes"]
    named = [n for n in notes if ORIGINAL in n and "named" in n]
    assert any("BENOWO" in n and "35.78.19" in n for n in named), named
    assert not any("Wonocolo" in n or "GAJUNGAN" in n for n in named), named
    assert not any("not found" in n for n in named), named
