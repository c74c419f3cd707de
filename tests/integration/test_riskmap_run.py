"""Risk maps of whole runs on the real Jawa Timur villages (8,492 desa/kelurahan): what each map says.

The maps are read from their data, not their pixels: the scene each run hands to the PNG renderer is
captured and drawn again as a Matplotlib figure (title, legend, view, collections, texts); the HTML page,
the tables and the other outputs are read as written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from matplotlib.colors import to_rgba
from tests_support import minimal_cap

import ews.review.riskmap as riskmap
from ews.channels.outbox import FileOutbox
from ews.config import RegionConfig, open_region
from ews.pipeline import (
    RegionData,
    RunReport,
    assess_villages,
    fetch_sources,
    fetch_warnings,
    no_warnings,
    open_region_data,
    publish_outputs,
)
from ews.review.riskmap import LEVEL_COLOURS, risk_map_figure
from ews.sources import HazardSources
from ews.store.repository import Store
from ews.types import Level

REPO = Path(__file__).resolve().parents[2]
SENDER = "cuaca.ekstrem@bmkg.go.id"
A1, B1, C1 = (
    "2.49.0.1.360.0.2026.11.28.10.35.001",
    "2.49.0.1.360.0.2026.11.28.10.35.009",
    "2.49.0.1.360.0.2026.11.28.11.35.003",
)
SMALL = "-7.345,112.670 -7.345,112.700 -7.325,112.700 -7.325,112.670 -7.345,112.670"  # south Surabaya
WEST = "-7.30,112.60 -7.30,112.64 -7.27,112.64 -7.27,112.60 -7.30,112.60"  # Surabaya / Gresik
STAFF_VILLAGE = "35.78.01.1001"  # Karang Pilang, under SMALL
# An M7.6 at sea 90 km south of Kab. Malang with tsunami potential (BMKG's autogempa shape).
QUAKE = {
    "Tanggal": "16 Feb 2026",
    "Jam": "23:10:00 WIB",
    "DateTime": "2026-02-16T16:10:00+00:00",
    "Coordinates": "-9.20,112.40",
    "Lintang": "9.20 LS",
    "Bujur": "112.40 BT",
    "Magnitude": "7.6",
    "Kedalaman": "15 km",
    "Wilayah": "Pusat gempa berada di laut 90 km Selatan Kab. Malang",
    "Potensi": "Berpotensi tsunami untuk diteruskan pada masyarakat",
    "Dirasakan": "",
    "Shakemap": "20260216231000.mmi.jpg",
}


def t(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-28T{hhmm}:00+07:00")


@pytest.fixture(scope="module")
def jatim(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[RegionConfig, RegionData]:
    """The shipped Jawa Timur region with a one-person exercise list, read once for the module."""
    folder = tmp_path_factory.mktemp("jatim")
    (folder / "exercise.csv").write_text(
        "phone,village_code,language,channel,consent_source,consent_time\n"
        f"+6289990008001,{STAFF_VILLAGE},id,sms,staff list,2026-01-01T00:00:00+07:00\n"
    )
    region = (REPO / "regions" / "jawa-timur.yaml").read_text() + f"exercise_list: {folder / 'exercise.csv'}\n"
    (folder / "jawa-timur.yaml").write_text(region)
    config = open_region(folder / "jawa-timur.yaml", {"EWS_SHARED_DATA": str(shared_data)})
    return config, open_region_data(config)


@pytest.fixture
def maps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every (villages, areas, title, raster, outline) the runs hand to the PNG renderer (drawn at a low dpi)."""
    seen: list[tuple[Any, ...]] = []
    real = riskmap.risk_map_png

    def spy(villages: Any, areas: Any, title: Any, *, raster: Any = None, outline: Any = None, dpi: int = 120) -> bytes:
        seen.append((villages, areas, title, raster, outline))
        return real(villages, areas, title, raster=raster, outline=outline, dpi=40)

    monkeypatch.setattr(riskmap, "risk_map_png", spy)
    return seen


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.from_url(f"sqlite:///{tmp_path / 'ews.db'}")
    yield opened
    opened.close()


def cycle(
    jatim: tuple[RegionConfig, RegionData],
    store: Store,
    out: Path,
    now: datetime,
    caps: list[bytes] | None = None,
    *,
    cap_file: Path | None = None,
    quakes: Path | None = None,
) -> RunReport:
    """One run: fetch (CAP files and/or an earthquake feed), assess, publish into ``out``."""
    config, region = jatim
    run_dir = out.with_name(out.name + "-run")
    feed = out.with_name(out.name + "-feed")
    run_dir.mkdir()
    feed.mkdir()
    for i, cap in enumerate(caps or []):
        (feed / f"{i}.xml").write_bytes(cap)
    if cap_file is not None:
        fetch_warnings(str(cap_file), run_dir)
    elif caps:
        fetch_warnings(str(feed), run_dir)
    else:
        no_warnings(run_dir)
    if quakes is not None:
        fetch_sources(HazardSources(quakes=(str(quakes),)), run_dir)
    assess_villages(config, run_dir, region=region, now=now, cache_dir=out.parent / "cache")
    return publish_outputs(
        config, run_dir, out, now=now, store=store, channel=FileOutbox(out.parent / "channel.jsonl"), region=region
    )


def figure_of(seen: tuple[Any, ...]) -> Any:
    villages, areas, title, raster, outline = seen
    return risk_map_figure(villages, areas, title, raster=raster, outline=outline, dpi=40)


def legend_texts(figure: Any) -> list[str]:
    return [" ".join(t.get_text().split()) for t in figure.axes[0].get_legend().get_texts()]


def figure_texts(figure: Any) -> str:
    return " ".join([figure.get_suptitle(), *(t.get_text() for t in figure.texts + figure.axes[0].texts)])


def collections(figure: Any) -> dict[str, Any]:
    return {c.get_gid(): c for c in figure.axes[0].collections if c.get_gid()}


def assert_in_view(figure: Any, frame: gpd.GeoDataFrame) -> None:
    (x0, x1), (y0, y1) = figure.axes[0].get_xlim(), figure.axes[0].get_ylim()
    minx, miny, maxx, maxy = frame.total_bounds
    assert x0 < minx, (x0, minx)
    assert maxx < x1, (maxx, x1)
    assert y0 < miny, (y0, miny)
    assert maxy < y1, (maxy, y1)


@pytest.mark.slow
def test_cancel_and_expiry_are_drawn_as_such_in_the_run_that_ends_them(jatim, store, maps, tmp_path) -> None:
    # BMKG's areaDesc is not the map's title: write another province's there.
    alert = minimal_cap(SMALL, identifier=A1, severity="Severe").replace(b"Jawa Timur</areaDesc>", b"Banten</areaDesc>")
    west = minimal_cap(WEST, identifier=B1, severity="Moderate", expires="2026-11-28T19:00:00+07:00")
    first = cycle(jatim, store, tmp_path / "1", t("17:05"), [alert, west])
    assert first.transitions["new"] > 0
    figure = figure_of(maps[-1])
    assert figure.get_suptitle() == "Jawa Timur: 2 peringatan aktif"
    assert "Hujan Lebat disertai Petir (BMKG) ×2" in figure_texts(figure)
    assert "Banten" not in figure_texts(figure)
    assert "area peringatan BMKG (2)" in legend_texts(figure)

    # 19:05: BMKG cancels the first (the Cancel repeats its polygon) and still serves the second, expired.
    refs = f"{SENDER},{A1},2026-11-28T17:00:00+07:00"
    cancel = minimal_cap(
        SMALL, identifier=C1, msg_type="Cancel", references=refs, effective="2026-11-28T19:05:00+07:00"
    )
    second = cycle(jatim, store, tmp_path / "2", t("19:05"), [cancel, west])
    cancelled, expired = second.transitions["cancel"], second.transitions["expire"]
    assert cancelled > 0
    assert expired > 0
    villages = maps[-1][0]
    assert dict(villages["ended"].value_counts()) == {"": len(villages) - cancelled - expired, "cancel": cancelled,
                                                      "end": expired}  # fmt: skip
    figure = figure_of(maps[-1])
    drawn = collections(figure)
    assert len(drawn["ended-cancel"].get_paths()) == cancelled
    assert len(drawn["ended-end"].get_paths()) == expired
    # Nothing is red, orange or yellow: the impact rows of the Cancel and the expired warning give no level.
    assert {tuple(c) for c in drawn["levels"].get_facecolor()} == {to_rgba(LEVEL_COLOURS[Level.NONE])}
    assert figure.get_suptitle() == "Jawa Timur: tidak ada peringatan aktif"
    legend = legend_texts(figure)
    assert f"DICABUT: peringatan dicabut ({cancelled} desa)" in legend
    assert f"BERAKHIR: peringatan berakhir ({expired} desa)" in legend
    assert not any("BMKG" in label for label in legend)  # no area in force is drawn
    words = {t.get_gid(): t.get_text() for t in figure.axes[0].texts if t.get_gid() in ("label-cancel", "label-end")}
    assert words == {"label-cancel": "DICABUT", "label-end": "BERAKHIR"}
    assert_in_view(figure, villages[villages["ended"] != ""])
    page = (tmp_path / "2" / "risk_map.html").read_text(encoding="utf-8")
    assert page.count('class="v end-cancel"') == cancelled
    assert page.count('class="v end-end"') == expired

    # The same feed ten minutes later: those alerts ended in the run before; nothing is drawn as ended now.
    cycle(jatim, store, tmp_path / "3", t("19:15"), [cancel, west])
    assert set(maps[-1][0]["ended"]) <= {""}
    assert "DICABUT" not in (tmp_path / "3" / "risk_map.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_tsunami_map_covers_every_leveled_village_and_names_ews_estimate(
    jatim, store, maps, tmp_path, cap_dir
) -> None:
    quakes = tmp_path / "autogempa.json"
    quakes.write_text(json.dumps({"Infogempa": {"gempa": QUAKE}}))
    # BMKG's real Banten nowcast is in force too (another province): oldest, but not this map's title.
    now = datetime.fromisoformat("2026-02-16T23:30:00+07:00")
    report = cycle(jatim, store, tmp_path / "o", now, cap_file=cap_dir / "dhanyyudi_cap_banten.xml", quakes=quakes)
    assert report.levels["Awas"] > 0
    villages = maps[-1][0]
    figure = figure_of(maps[-1])
    assert figure.get_suptitle() == "Jawa Timur: 1 peringatan aktif"
    assert "Gempabumi Berpotensi Tsunami (info gempa BMKG, perkiraan EWS)" in figure_texts(figure)
    assert "Banten" not in figure_texts(figure)

    legend = legend_texts(figure)
    circle = [label for label in legend if label.startswith("radius tsunami ")]
    assert len(circle) == 1
    assert circle[0].endswith(" km dari pusat gempa – perkiraan EWS (1)")
    assert not any("area peringatan BMKG" in label for label in legend)  # the Banten polygon is out of view
    assert len(collections(figure)["areas-estimate"].get_paths()) == 1

    # Every village the run leveled (the south coast at Awas included) is in view, whole.
    with (tmp_path / "o" / "summary.csv").open(encoding="utf-8") as handle:
        leveled = {r["code"] for r in csv.DictReader(handle) if int(r["level"]) > 0}
    table = jatim[1].villages
    assert_in_view(figure, table[table["code"].isin(leveled)])
    assert set(villages.loc[villages["level"] > 0, "code"]) == leveled

    # Kab/kota names: once each, legible, never overlapping, most of the 38 written.
    labels = [t for t in figure.axes[0].texts if t.get_gid() == "label-kabkota"]
    names = [t.get_text() for t in labels]
    assert len(names) == len(set(names))
    assert len(names) >= 20
    assert set(names) <= {riskmap._short_kabkota(n) for n in table["kabkota_name"]}
    assert all(t.get_fontsize() >= 7 for t in labels)
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def output_files(out: Path) -> dict[str, Path]:
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("status", ["Exercise", "Actual"])
def test_every_output_of_an_exercise_run_says_latihan(jatim, store, maps, tmp_path, status) -> None:
    alert = minimal_cap(SMALL, identifier=A1, severity="Severe", status=status)
    report = cycle(jatim, store, tmp_path / "o", t("17:05"), [alert])
    files = output_files(tmp_path / "o")
    expected = {"risk_map.png", "risk_map.html", "summary.csv", "villages.gpkg", "villages.geojson",
                "warnings.geojson", "outbox.jsonl", "report.json", "cap/index.atom"}  # fmt: skip
    assert expected <= set(files)
    assert any(name.startswith("cap/") and name.endswith(".xml") for name in files)
    assert report.transitions["new"] > 0
    exercise = status == "Exercise"
    for name, path in files.items():
        if name.endswith(".gpkg"):
            table = gpd.read_file(path)
            if exercise:
                assert set(table["exercise"]) == {"LATIHAN"}, name
            else:
                assert "exercise" not in table.columns, name
        else:
            assert (b"LATIHAN" in path.read_bytes()) is exercise, name
    with (tmp_path / "o" / "summary.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert rows
    if exercise:  # the first column, on every row; every other column as before
        assert (reader.fieldnames or [])[0] == "exercise"
        assert {r["exercise"] for r in rows} == {"LATIHAN"}
        lines = (tmp_path / "o" / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
        assert lines  # the exercise list's member
        assert all("LATIHAN" in json.loads(line)["text"] for line in lines)
        record = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
        assert record["exercise"] == "LATIHAN"
        assert record["exercise_warnings"] == [A1]
        assert figure_of(maps[-1]).get_suptitle() == "LATIHAN – Jawa Timur: 1 peringatan aktif"
    else:
        assert "exercise" not in (reader.fieldnames or [])
