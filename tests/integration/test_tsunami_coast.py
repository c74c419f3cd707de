"""The tsunami coast of real regions, from the land around them (the shared boundaries), and in a run.

Jawa Timur's villages (kel/35, 8,492 desa/kelurahan) with the Jawa Tengah and Bali kecamatan as the land
around them, as ``regions/jawa-timur.yaml`` configures it. The codes below were read from the shared data;
the border villages were "coastal" when the coast was the outline of the Jawa Timur layer alone.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests_support import FLORES

from ews.config import RegionConfig, open_region
from ews.exposure.coverage import VillageLayer
from ews.hazard.earthquake import coastal_villages, surrounding_land, village_distances_km
from ews.ingest.boundaries import list_land_files, read_boundaries, read_land
from ews.pipeline import open_region_data
from ews.sources import HazardSources, assess_hazards, stage_sources
from ews.store import coast_cache

REPO = Path(__file__).resolve().parents[2]

# On the land border with Jawa Tengah (Wonogiri, Karanganyar, Sragen, Blora, Rembang), none on the sea.
BORDER = {
    "35.01.01.2006": "Gedompol (Donorojo, Pacitan)",
    "35.01.07.2005": "Tokawi (Nawangan, Pacitan)",
    "35.01.08.2007": "Bangunsari (Bandar, Pacitan)",
    "35.02.14.2002": "Pohijo (Sampung, Ponorogo)",
    "35.20.07.1013": "Sarangan (Plaosan, Magetan)",
    "35.21.01.2008": "Sine (Sine, Ngawi)",
    "35.21.13.2002": "Mantingan (Mantingan, Ngawi)",
    "35.22.19.2001": "Tebon (Padangan, Bojonegoro)",
    "35.22.25.2004": "Kedewan (Kedewan, Bojonegoro)",
    "35.23.01.2001": "Jlodro (Kenduruan, Tuban)",
    "35.23.02.2001": "Kebonharjo (Jatirogo, Tuban)",
}
# On the Indian Ocean, Pacitan to Banyuwangi (Widoro is the last one before the Wonogiri border).
SOUTH_COAST = {
    "35.01.01.2001": "Widoro (Donorojo, Pacitan)",
    "35.01.02.2003": "Watukarung (Pringkuku, Pacitan)",
    "35.03.08.2011": "Prigi (Watulimo, Trenggalek)",
    "35.03.08.2012": "Tasikmadu (Watulimo, Trenggalek)",
    "35.04.15.2001": "Besole (Besuki, Tulungagung)",
    "35.05.13.2001": "Serang (Panggungrejo, Blitar)",
    "35.05.08.2003": "Tambakrejo (Wonotirto, Blitar)",
    "35.07.04.2014": "Tambakrejo (Sumbermanjing Wetan, Malang)",
    "35.07.03.2005": "Srigonco (Bantur, Malang)",
    "35.08.04.2003": "Bades (Pasirian, Lumajang)",
    "35.08.07.2003": "Wotgalih (Yosowilangun, Lumajang)",
    "35.09.02.2002": "Paseban (Kencong, Jember)",
    "35.09.12.2003": "Sumberejo (Ambulu, Jember)",
    "35.10.03.2001": "Grajagan (Purwoharjo, Banyuwangi)",
    "35.10.01.2004": "Sumberagung (Pesanggaran, Banyuwangi)",
}
# Kota Surabaya on the Madura Strait and the Lamong Bay, and the kelurahan just behind them.
SURABAYA_SHORE = {
    "35.78.29.1001": "Kedung Cowek",
    "35.78.29.1003": "Kenjeran",
    "35.78.29.1005": "Sukolilo Baru",
    "35.78.17.1004": "Tambak Wedi",
    "35.78.16.1004": "Ujung",
    "35.78.09.1001": "Keputih",
    "35.78.26.1003": "Kejawan Putih Tambak",
    "35.78.03.1005": "Wonorejo (Rungkut)",
    "35.78.03.1006": "Medokan Ayu",
    "35.78.15.1003": "Perak Barat",
    "35.78.19.1004": "Tambak Oso Wilangun",
    "35.78.19.1005": "Romokalisari",
}
SURABAYA_BEHIND = {
    "35.78.16.1003": "Wonokusumo",
    "35.78.17.1001": "Tanah Kali Kedinding",
    "35.78.17.1002": "Sidotopo Wetan",
    "35.78.26.1005": "Dukuh Sutorejo",
    "35.78.26.1006": "Kalijudan",
    "35.78.10.1003": "Gading",
    "35.78.09.1002": "Gebang Putih",
    "35.78.15.1004": "Dupak",
    "35.78.19.1003": "Sememi",
}
# Around the hole the missing Tanjung Perak polygon (35.78.12.1006, see PROVENANCE) leaves on the shore.
TANJUNG_PERAK_NEIGHBOURS = {
    "35.78.12.1002": "Nyamplungan",
    "35.78.12.1003": "Krembangan Utara",
    "35.78.15.1001": "Krembangan Selatan",
    "35.78.15.1002": "Kemayoran",
}


@pytest.fixture(scope="module")
def jatim_config(shared_data: Path) -> RegionConfig:
    return open_region(REPO / "regions" / "jawa-timur.yaml", {"EWS_SHARED_DATA": str(shared_data)})


@pytest.fixture(scope="module")
def jatim(jatim_villages_dir: Path) -> VillageLayer:
    return VillageLayer.from_villages(read_boundaries(jatim_villages_dir))


@pytest.fixture(scope="module")
def jatim_coast(jatim: VillageLayer, jatim_config: RegionConfig) -> set[str]:
    land_paths = jatim_config.earthquake.land
    assert land_paths
    land = surrounding_land(read_land(list_land_files(land_paths)), list(jatim.table["code"]))
    assert land.own == ()  # Jawa Tengah and Bali only
    return coastal_villages(jatim, land=land.land.geometry)


@pytest.fixture(scope="module")
def outline_only(jatim: VillageLayer) -> set[str]:
    return coastal_villages(jatim)


def names(codes: set[str], table: dict[str, str]) -> list[str]:
    return sorted(table[c] for c in codes)


@pytest.mark.slow
def test_villages_on_the_jawa_tengah_border_are_not_coastal(jatim_coast: set[str], outline_only: set[str]) -> None:
    assert set(BORDER) <= outline_only  # the layer's outline calls them coast
    assert names(set(BORDER) & jatim_coast, BORDER) == []
    # Nowhere in the inland border kab (Ponorogo, Magetan, Ngawi, Bojonegoro) is on the sea.
    assert not {c for c in jatim_coast if c[:5] in ("35.02", "35.20", "35.21", "35.22")}
    # The land only takes coast away: nothing that was not on the layer's outline becomes coastal.
    assert jatim_coast <= outline_only
    assert len(outline_only - jatim_coast) == 93


@pytest.mark.slow
def test_the_south_coast_is_coastal(jatim_coast: set[str]) -> None:
    assert names(set(SOUTH_COAST) - jatim_coast, SOUTH_COAST) == []
    kab = {c[:5] for c in jatim_coast}
    assert {"35.01", "35.03", "35.04", "35.05", "35.07", "35.08", "35.09", "35.10"} <= kab


@pytest.mark.slow
def test_surabaya_is_coastal_only_on_the_shore(jatim_coast: set[str]) -> None:
    assert names(set(SURABAYA_SHORE) - jatim_coast, SURABAYA_SHORE) == []
    assert names(set(SURABAYA_BEHIND) & jatim_coast, SURABAYA_BEHIND) == []


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the shared boundaries lack Tanjung Perak (35.78.12.1006, the port on the shore): its place is "
    "open to the sea in the layer, so the kelurahan behind it touch that 'sea'; a land file with its polygon fixes it",
)
def test_the_kelurahan_behind_tanjung_perak_are_not_coastal(jatim_coast: set[str]) -> None:
    assert names(set(TANJUNG_PERAK_NEIGHBOURS) & jatim_coast, TANJUNG_PERAK_NEIGHBOURS) == []


@pytest.mark.slow
def test_kota_madiun_is_inland(jatim_coast: set[str], jatim: VillageLayer) -> None:
    madiun = set(jatim.table.loc[jatim.table["kabkota"] == "35.77", "code"])
    assert len(madiun) == 27
    assert not madiun & jatim_coast


@pytest.mark.slow
def test_a_kabkota_region_with_its_provinces_kecamatan_as_land(
    jatim_villages_dir: Path, kec_dir: Path, jatim_coast: set[str]
) -> None:
    # Kota Surabaya alone: the layer is cut at its borders with Gresik and Sidoarjo. With Jawa Timur's
    # kecamatan as land (Surabaya's own 31 left out), its coast is the province-wide one.
    surabaya = read_boundaries(jatim_villages_dir / "wilayah_boundaries_kel_35.78.geojson")
    layer = VillageLayer.from_villages(surabaya)
    land = surrounding_land(read_land([kec_dir / "wilayah_boundaries_kec_35.geojson"]), list(surabaya["code"]))
    assert len(land.own) == 31  # Surabaya's 31 kecamatan; the other 635 are land
    assert all(c.startswith("35.78.") for c in land.own)
    coast = coastal_villages(layer, land=land.land.geometry)
    expected = {c for c in jatim_coast if c.startswith("35.78.")}
    assert coast == expected
    assert len(coastal_villages(layer)) > len(expected) + 15  # the cut layer's outline: Gresik/Sidoarjo borders


def test_bali_with_jawa_timur_as_land_keeps_its_coast(kec_dir: Path) -> None:
    # Across the Bali Strait (2.4 km at its narrowest) Jawa Timur is other land, not the same land.
    bali = read_boundaries(kec_dir / "wilayah_boundaries_kec_51.geojson")
    layer = VillageLayer.from_villages(bali)
    land = surrounding_land(read_land([kec_dir / "wilayah_boundaries_kec_35.geojson"]), list(bali["code"]))
    assert coastal_villages(layer, land=land.land.geometry) == coastal_villages(layer)


# -- in a run: sources.assess_hazards derives the coast, caches it and says what it did ------------------


def tsunami_feed(folder: Path, lat: float, lon: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {**FLORES, "Coordinates": f"{lat:.2f},{lon:.2f}", "Lintang": f"{-lat:.2f} LS", "Bujur": f"{lon:.2f} BT",
              "Magnitude": "7.8", "Kedalaman": "20 km", "Wilayah": "uji: selatan Jawa"}  # fmt: skip
    path = folder / "gempaterkini.json"
    path.write_text(json.dumps({"Infogempa": {"gempa": [record]}}), encoding="utf-8")
    return path


NOW = datetime(2021, 12, 14, 4, 0, tzinfo=UTC)  # 40 minutes after the Flores record's origin time


def assess(region: object, feed: Path, run_dir: Path, cache: Path) -> tuple[list[str], list[dict[str, str]], list[str]]:
    run_dir.mkdir(parents=True)
    stage_sources(HazardSources(quakes=(str(feed),)), run_dir)
    out = assess_hazards(region, run_dir, NOW, cache_dir=cache)  # type: ignore[arg-type]
    tsunami = [v.code for m in out.messages for v in m.villages if v.cause == "tsunami"]
    return tsunami, out.problems, out.notes


@pytest.mark.slow
def test_a_south_coast_tsunami_in_a_jawa_timur_run(
    jatim_config: RegionConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coast_cache, "_MEMORY", {})
    region = open_region_data(jatim_config)
    feed = tsunami_feed(tmp_path / "feed", -9.5, 111.6)  # ~150 km south of Pacitan
    cache = tmp_path / "cache"
    tsunami, problems, notes = assess(region, feed, tmp_path / "r1", cache)
    assert problems == []
    assert {"35.01.01.2001", "35.03.08.2011", "35.05.13.2001"} <= set(tsunami)  # Widoro, Prigi, Serang
    # The border villages of Pacitan, Ponorogo, Magetan and Ngawi are within the 300 km tsunami radius
    # (and were on the layer's outline), but on the land border: no "SEGERA JAUHI PANTAI" for them.
    table = region.layer.table
    km = dict(zip(table["code"], village_distances_km(-9.5, 111.6, table.geometry.values), strict=True))
    assert all(km[c] < 300 for c in BORDER if c[:5] in ("35.01", "35.02", "35.20", "35.21"))
    assert not set(BORDER) & set(tsunami)
    coast_notes = [n for n in notes if "tsunami coast" in n]
    assert coast_notes == [
        "gempa: tsunami coast: 665 of 8492 villages, from the villages and 2 land file(s) "
        "(computed; 633 land feature(s) kept, 0 of the region itself left out)"
    ]
    assert len(list(cache.glob("coast-*.json"))) == 1
    # The next run of this worker takes it from memory, a new process from the cache folder.
    _, _, notes2 = assess(region, feed, tmp_path / "r2", cache)
    assert any("665 of 8492" in n and "(memory; 633 land feature(s) kept" in n for n in notes2)
    monkeypatch.setattr(coast_cache, "_MEMORY", {})
    tsunami3, _, notes3 = assess(region, feed, tmp_path / "r3", cache)
    assert any("665 of 8492" in n and "(disk; 633 land feature(s) kept" in n for n in notes3)
    assert tsunami3 == tsunami


def bali_config(folder: Path, kec_dir: Path, earthquake: str) -> RegionConfig:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bali.yaml"
    path.write_text(
        "id: bali-kec\nname: Bali\nprovince_code: '51'\n"
        f"boundaries: {{path: {json.dumps(str(kec_dir / 'wilayah_boundaries_kec_51.geojson'))}}}\n"
        f"earthquake: {{tsunami_radius_km: 1000{earthquake}}}\n",
        encoding="utf-8",
    )
    return open_region(path)


@pytest.mark.parametrize(
    ("earthquake", "problem", "source"),
    [
        ("", "tsunami coast taken from the outline of the region's boundaries alone: villages on a land border "
             "with a neighbouring province count as coastal", "the outline of the boundaries alone"),
        (", land: []", None, "the outline of the boundaries (earthquake.land: [], no land border)"),
        (", land: missing/jatim.geojson", r"land around the region not used, land borders count as coast this run: "
         r"\S+/missing/jatim\.geojson: boundary file not found; check 'earthquake\.land'", "the outline of the "
         "boundaries alone"),
        (", land: broken.geojson", r"land around the region not used, land borders count as coast this run: "
         r"earthquake\.land: \S+/broken\.geojson: cannot read as a boundary file", "the outline of the boundaries "
         "alone"),
        (", land: own.geojson", r"the land files hold only the region's own areas \(57 features\): "
         "land borders count as coast", "the villages and 1 land file(s)"),
    ],
)  # fmt: skip
def test_a_run_says_when_land_borders_count_as_coast(
    kec_dir: Path, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    earthquake: str, problem: str | None, source: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(coast_cache, "_MEMORY", {})
    config = bali_config(tmp_path / "region", kec_dir, earthquake)
    (tmp_path / "region" / "broken.geojson").write_text('{"type": "FeatureCollection", "features": [', "utf-8")
    (tmp_path / "region" / "own.geojson").write_bytes((kec_dir / "wilayah_boundaries_kec_51.geojson").read_bytes())
    region = open_region_data(config)
    feed = shared_data / "bmkg" / "gempa" / "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
    tsunami, problems, notes = assess(region, feed, tmp_path / "run", tmp_path / "cache")
    assert len(set(tsunami)) == 35  # the alerts still go out, whatever the land
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problems[0]["source"] == f"{tmp_path / 'region' / 'bali.yaml'} [earthquake.land]"
        assert problems[0]["message"].startswith("DEGRADED: ")
        assert re.search(problem, problems[0]["message"]), problems[0]["message"]
    coast = f"gempa: tsunami coast: 35 of 57 villages, from {source} (computed"
    assert any(n.startswith(coast) for n in notes), [n for n in notes if "coast" in n]
