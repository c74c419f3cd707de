"""Risk map renderers: PNG bytes and the offline HTML page, on five hand-made villages near 112.0E 7.5S."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.image import imread
from shapely.geometry import MultiPolygon, Point, Polygon, box

from ews.errors import DataValidationError
from ews.review.riskmap import (
    LEVEL_COLOURS,
    ActiveWarning,
    MapTitle,
    RasterLayer,
    risk_map_figure,
    risk_map_html,
    risk_map_png,
)
from ews.types import Level

WITA = timezone(timedelta(hours=8))
XSS = "<script>alert(1)</script>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# A 2 x 2 block of 0.01-degree squares plus a two-part village to the east:
#
#   -7.48 +--------+--------+
#         |   C    |   D    |      D has a square hole in the middle
#   -7.49 +--------+--------+
#         |   A  [=warning=]|  B   the warning box overlaps A and B only
#   -7.50 +--------+--------+      E (MultiPolygon) sits at 112.03..112.04
#       112.00   112.01   112.02
A, B, C, D, E = "35.01.01.2001", "35.01.01.2002", "35.01.02.2003", "35.01.02.2004", "35.01.03.2005"
HOLED = Polygon(
    box(112.01, -7.49, 112.02, -7.48).exterior.coords,
    [box(112.013, -7.487, 112.017, -7.483).exterior.coords],
)
TWO_PARTS = MultiPolygon([box(112.03, -7.50, 112.035, -7.495), box(112.036, -7.49, 112.04, -7.485)])
DEFAULT_ROWS: dict[str, dict[str, Any]] = {
    A: {"name": "Alpha", "level": 2, "fraction": 0.4, "population_exposed": 1234.4, "kecamatan": "Satu"},
    B: {"name": XSS, "level": 3, "fraction": 0.3, "population_exposed": 50.0, "kecamatan": "Satu"},
    C: {"name": "Gamma", "level": 2, "fraction": 0.7, "population_exposed": 10.0, "kecamatan": "Dua"},
    D: {"name": "Delta", "level": 0, "fraction": 0.0, "population_exposed": 0.0, "kecamatan": "Dua"},
    E: {"name": "Epsilon", "level": 1, "fraction": 0.2, "population_exposed": np.nan, "kecamatan": "Tiga"},
}
GEOMETRY = {
    A: box(112.00, -7.50, 112.01, -7.49),
    B: box(112.01, -7.50, 112.02, -7.49),
    C: box(112.00, -7.49, 112.01, -7.48),
    D: HOLED,
    E: TWO_PARTS,
}


@pytest.fixture
def make_villages() -> Callable[..., gpd.GeoDataFrame]:
    def make(levels: dict[str, int] | None = None, crs: str | None = "EPSG:4326") -> gpd.GeoDataFrame:
        rows = []
        for code, row in DEFAULT_ROWS.items():
            level = row["level"] if levels is None else levels.get(code, 0)
            rows.append({"code": code, **row, "level": level, "geometry": GEOMETRY[code]})
        return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)

    return make


@pytest.fixture
def warnings_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"identifier": ["CBT20260924001"], "event": ["Hujan Lebat dan Petir"]},
        geometry=[box(112.005, -7.499, 112.015, -7.495)],
        crs="EPSG:4326",
    )


@pytest.fixture
def no_warnings() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"identifier": [], "event": []}, geometry=[], crs="EPSG:4326")


def make_title(**changes: Any) -> MapTitle:
    fields: dict[str, Any] = {
        "region": "Gorontalo",
        "active": (ActiveWarning("CBT20260924001", "Hujan Lebat dan Petir", "BMKG"),),
        "valid_from": datetime(2026, 9, 24, 15, 27, tzinfo=WITA),
        "valid_until": datetime(2026, 9, 24, 17, 27, tzinfo=WITA),
        "zone_name": "WITA",
        "population_note": "Penduduk: estimasi dari total kab/kota (proporsional luas)",
    }
    fields.update(changes)
    return MapTitle(**fields)


def decode(png: bytes) -> np.ndarray:
    return np.asarray(imread(io.BytesIO(png), format="png"))


def pixels_of(image: np.ndarray, colour: str) -> int:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return int((np.abs(image[:, :, :3] - rgb).max(axis=2) < 2 / 255).sum())


def village_fills(page: str) -> dict[str, str]:
    return dict(
        (code, fill)
        for fill, code in re.findall(r'<path class="v" fill="(#[0-9a-f]{6})" d="[^"]*" data-code="([^"]+)"', page)
    )


# ----------------------------------------------------------------------------------------------- PNG


def test_png_is_a_png_of_the_requested_size(make_villages, warnings_frame):
    png = risk_map_png(make_villages(), warnings_frame, make_title(), dpi=50)
    assert png.startswith(PNG_SIGNATURE)
    # a 10 x 8 inch figure at 50 dpi
    assert decode(png).shape == (400, 500, 4)


def test_png_shows_awas_red_only_when_a_village_is_awas(make_villages, warnings_frame):
    awas = decode(risk_map_png(make_villages({B: 3}), warnings_frame, make_title(), dpi=60))
    quiet = decode(risk_map_png(make_villages({}), warnings_frame, make_title(), dpi=60))
    red = LEVEL_COLOURS[Level.AWAS]
    # The legend swatch is red in both (a few dozen pixels); the Awas village fills a large part of the map.
    assert pixels_of(awas, red) > pixels_of(quiet, red) + 2000
    assert pixels_of(quiet, red) < 500
    assert pixels_of(quiet, LEVEL_COLOURS[Level.NONE]) > 2000


def test_png_is_deterministic_and_changes_with_levels(make_villages, warnings_frame):
    first = risk_map_png(make_villages(), warnings_frame, make_title(), dpi=40)
    assert risk_map_png(make_villages(), warnings_frame, make_title(), dpi=40) == first
    assert risk_map_png(make_villages({A: 1}), warnings_frame, make_title(), dpi=40) != first
    assert b"Software" not in first
    assert b"matplotlib" not in first.lower()


@pytest.mark.parametrize(
    "title",
    [
        make_title(valid_from=None, valid_until=None, active=(), population_note=None),
        make_title(
            active=tuple(ActiveWarning(f"ID{i}", "$x$ Banjir " * 10, "BMKG") for i in range(7)), region="$x$ Kota " * 30
        ),
    ],
    ids=["bare-title", "long-title"],
)
def test_png_renders_edge_cases(make_villages, no_warnings, title):
    png = risk_map_png(make_villages({}), no_warnings, title, dpi=30)
    assert png.startswith(PNG_SIGNATURE)


def test_png_renders_a_frame_without_villages(make_villages, warnings_frame):
    png = risk_map_png(make_villages().iloc[0:0], warnings_frame, make_title(), dpi=30)
    assert png.startswith(PNG_SIGNATURE)


# ---------------------------------------------------------------------------------------------- HTML


def test_html_is_offline(make_villages, warnings_frame):
    page = risk_map_html(make_villages(), warnings_frame, make_title())
    for forbidden in ("http://", "https://", "//cdn", " src=", "fetch(", "@import"):
        assert forbidden not in page
    assert '<meta charset="utf-8">' in page
    assert "<title>Peta risiko: Gorontalo: 1 peringatan aktif</title>" in page


def test_html_has_one_path_per_village_filled_by_level(make_villages, warnings_frame):
    page = risk_map_html(make_villages(), warnings_frame, make_title())
    assert page.count('<path class="v"') == 5
    assert village_fills(page) == {
        A: "#f28c28",  # Siaga
        B: "#d7301f",  # Awas
        C: "#f28c28",  # Siaga
        D: "#e0e0e0",  # none
        E: "#f7d038",  # Waspada
    }
    assert page.count('<path class="w"') == 1
    assert 'fill-rule="evenodd"' in page


def test_html_keeps_holes_and_all_parts(make_villages, warnings_frame):
    page = risk_map_html(make_villages(), warnings_frame, make_title())
    paths = dict(re.findall(r'<path class="v" fill="#[0-9a-f]{6}" d="([^"]*)" data-code="([^"]+)"', page))
    by_code = {code: d for d, code in paths.items()}
    assert by_code[D].count("M") == 2  # exterior + hole
    assert by_code[E].count("M") == 2  # two parts
    assert by_code[A].count("M") == 1


def test_html_escapes_names_from_data(make_villages, warnings_frame):
    active = (ActiveWarning("X1", 'Banjir "<b>"', "<i>sender</i>"),)
    page = risk_map_html(make_villages(), warnings_frame, make_title(active=active, region="<u>Gorontalo</u>"))
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page
    assert "<i>" not in page
    assert "<u>" not in page
    # the only script element is the page's own
    assert page.count("<script>") == 1


def test_html_title_block(make_villages, warnings_frame):
    active = tuple(ActiveWarning(f"CBT2026092400{i}", "Hujan Lebat dan Petir", "BMKG") for i in range(5))
    page = risk_map_html(make_villages(), warnings_frame, make_title(active=active))
    assert "<h1>Gorontalo: 5 peringatan aktif</h1>" in page
    assert '<p class="hazards">Hujan Lebat dan Petir (BMKG) ×5</p>' in page
    assert "Berlaku 24 Sep 2026 15:27–17:27 WITA" in page
    # three ids, then the count of the rest
    assert "Peringatan: CBT20260924000, CBT20260924001, CBT20260924002 +2" in page
    assert "CBT20260924003" not in page
    assert "proporsional luas" in page


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "expected"),
    [
        (datetime(2026, 9, 24, 15, 27, tzinfo=WITA), None, "Berlaku mulai 24 Sep 2026 15:27 WITA"),
        (None, datetime(2026, 9, 24, 17, 27, tzinfo=WITA), "Berlaku sampai 24 Sep 2026 17:27 WITA"),
        (None, None, "Waktu berlaku tidak diketahui"),
        (
            datetime(2026, 12, 31, 23, 0, tzinfo=WITA),
            datetime(2027, 1, 1, 2, 0, tzinfo=WITA),
            "Berlaku 31 Des 2026 23:00 – 1 Jan 2027 02:00 WITA",
        ),
    ],
)
def test_html_validity_line(make_villages, warnings_frame, valid_from, valid_until, expected):
    title = make_title(valid_from=valid_from, valid_until=valid_until)
    assert expected in risk_map_html(make_villages(), warnings_frame, title)


def test_html_legend_counts(make_villages, warnings_frame):
    page = risk_map_html(make_villages(), warnings_frame, make_title())
    for label in ("Awas (1 desa)", "Siaga (2 desa)", "Waspada (1 desa)", "tidak terdampak (1 desa)"):
        assert label in page
    assert "area peringatan BMKG (1)" in page


def test_html_table_lists_affected_villages_by_level_then_fraction(make_villages, warnings_frame):
    page = risk_map_html(make_villages(), warnings_frame, make_title())
    # B Awas; C Siaga 0.7 before A Siaga 0.4; E Waspada; D (level 0) is left out.
    assert re.findall(r'<tr data-code="([^"]+)">', page) == [B, C, A, E]
    row_a = re.search(rf'<tr data-code="{A}">.*?</tr>', page)
    assert row_a is not None
    assert "<td>Siaga</td>" in row_a.group()
    assert ">40%<" in row_a.group()
    assert ">1.234<" in row_a.group()  # 1234.4 people, Indonesian thousands separator
    row_e = re.search(rf'<tr data-code="{E}">.*?</tr>', page)
    assert row_e is not None
    assert "tidak diketahui" in row_e.group()


def test_html_tooltip_data(make_villages, warnings_frame):
    page = risk_map_html(make_villages(), warnings_frame, make_title())
    path_e = re.search(rf'<path class="v"[^>]*data-code="{E}"[^>]*/>', page)
    assert path_e is not None
    for attribute in (
        'data-name="Epsilon"',
        'data-kecamatan="Tiga"',
        'data-level="1"',
        'data-level-label="Waspada"',
        'data-fraction="0.2"',
        'data-people=""',  # NaN: the tooltip says "tidak diketahui"
    ):
        assert attribute in path_e.group()
    assert "tidak diketahui" in page
    assert 'addEventListener("wheel"' in page
    assert "pointerdown" in page


def test_html_renders_without_warnings_or_levels(make_villages, no_warnings):
    page = risk_map_html(make_villages({}), no_warnings, make_title())
    assert page.count('<path class="v"') == 5
    assert '<path class="w"' not in page
    assert set(village_fills(page).values()) == {LEVEL_COLOURS[Level.NONE]}
    assert "<table" not in page
    assert "Tidak ada desa dengan tingkat peringatan." in page
    assert "tidak terdampak (5 desa)" in page


def test_html_accepts_an_empty_warnings_frame_without_crs(make_villages):
    empty = gpd.GeoDataFrame({"identifier": [], "event": []}, geometry=[])
    assert "<svg" in risk_map_html(make_villages(), empty, make_title())


def test_html_is_deterministic(make_villages, warnings_frame):
    first = risk_map_html(make_villages(), warnings_frame, make_title())
    assert risk_map_html(make_villages(), warnings_frame, make_title()) == first
    shuffled = make_villages().iloc[::-1]
    assert risk_map_html(shuffled, warnings_frame, make_title()) == first


def test_html_simplifies_dense_geometries(make_villages, warnings_frame):
    villages = make_villages()
    # a circle with ~8000 vertices; simplified at 1/2000 of the view it needs far fewer
    villages.loc[villages["code"] == A, "geometry"] = Point(112.005, -7.495).buffer(0.005, quad_segs=2000)
    page = risk_map_html(villages, warnings_frame, make_title())
    d = re.search(rf'd="([^"]*)" data-code="{A}"', page)
    assert d is not None
    assert 8 < len(d.group(1).split()) / 2 < 1000
    # coordinates are rounded to at most two decimals of a 1000-unit view box
    assert not re.search(r"\d\.\d{3}", d.group(1))


# -------------------------------------------------------------------------------------------- errors

RENDERERS = [
    pytest.param(lambda v, w: risk_map_png(v, w, make_title(), dpi=20), id="png"),
    pytest.param(lambda v, w: risk_map_html(v, w, make_title()), id="html"),
]


@pytest.mark.parametrize("render", RENDERERS)
def test_missing_level_column_is_named(make_villages, warnings_frame, render):
    with pytest.raises(ValueError, match=r"villages GeoDataFrame is missing column\(s\) 'level'"):
        render(make_villages().drop(columns="level"), warnings_frame)


@pytest.mark.parametrize("render", RENDERERS)
def test_projected_crs_says_to_reproject(make_villages, warnings_frame, render):
    with pytest.raises(DataValidationError, match=r"not EPSG:4326.*reproject.*to_crs"):
        render(make_villages().to_crs("EPSG:32749"), warnings_frame)
    with pytest.raises(ValueError, match=r"warnings GeoDataFrame .* reproject"):
        render(make_villages(), warnings_frame.to_crs("EPSG:3857"))


@pytest.mark.parametrize("render", RENDERERS)
def test_missing_crs_says_to_set_it(make_villages, warnings_frame, render):
    with pytest.raises(ValueError, match=r"villages GeoDataFrame has no CRS.*set_crs"):
        render(make_villages(crs=None), warnings_frame)


def test_bad_level_names_the_village(make_villages, warnings_frame):
    with pytest.raises(ValueError, match=rf"village {re.escape(B)}: level 5 is not an integer 0..3"):
        risk_map_html(make_villages({B: 5}), warnings_frame, make_title())


def test_bad_fraction_names_the_village(make_villages, warnings_frame):
    villages = make_villages()
    villages.loc[villages["code"] == C, "fraction"] = 1.5
    with pytest.raises(ValueError, match=rf"village {re.escape(C)}: fraction 1.5 is not between 0 and 1"):
        risk_map_html(villages, warnings_frame, make_title())


def test_not_a_geodataframe(warnings_frame):
    with pytest.raises(ValueError, match="villages must be a geopandas GeoDataFrame"):
        risk_map_html([], warnings_frame, make_title())  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- rain underlay


def rain_layer() -> RasterLayer:
    values = np.zeros((20, 30))
    values[5:15, 10:20] = 60.0  # a wet block; the rest is dry (transparent)
    values[0, 0] = np.nan
    return RasterLayer.from_transform(values, (0.001, 0.0, 111.995, 0.0, -0.001, -7.49), "Hujan 24 jam (mm)")


def test_raster_layer_bounds_follow_the_transform() -> None:
    layer = rain_layer()
    assert layer.bounds == pytest.approx((111.995, -7.51, 112.025, -7.49))
    rgba = layer.rgba()
    assert rgba.shape == (20, 30, 4)
    assert rgba[0, 0, 3] == 0.0  # missing
    assert rgba[1, 1, 3] == 0.0  # dry
    assert rgba[10, 15, 3] > 0.5  # wet


def test_png_draws_the_rain_under_the_villages(make_villages, warnings_frame):
    plain = decode(risk_map_png(make_villages(), warnings_frame, make_title()))
    rainy = decode(risk_map_png(make_villages(), warnings_frame, make_title(), raster=rain_layer()))
    assert plain.shape == rainy.shape
    blue = (rainy[:, :, 2] > rainy[:, :, 0] + 0.15).sum()
    assert blue > (plain[:, :, 2] > plain[:, :, 0] + 0.15).sum() + 500


def test_html_embeds_the_rain_offline_and_leaves_unleveled_villages_unfilled(make_villages, warnings_frame):
    page = risk_map_html(make_villages(), warnings_frame, make_title(), raster=rain_layer())
    assert re.search(r'<image class="r" [^>]*href="data:image/png;base64,', page)
    assert page.index('<image class="r"') < page.index('<path class="v"')  # under the villages
    assert "Hujan 24 jam (mm)" in page
    assert 'fill="none"' in page or all(f != LEVEL_COLOURS[Level.NONE] for f in village_fills(page).values())
    assert "http://" not in page.replace("http://www.w3.org", "")


# ------------------------------------------------------------------------------ what the map says (data)

KABKOTA = {A: "Kabupaten Satu", B: "Kabupaten Satu", C: "Kota Dua", D: "Kota Dua", E: "Kabupaten Tiga"}


def with_columns(villages: gpd.GeoDataFrame, ended: dict[str, str] | None = None) -> gpd.GeoDataFrame:
    """The optional columns: kab/kota names, and how a village's alert ended this run."""
    return villages.assign(
        kabkota=villages["code"].map(KABKOTA), ended=[(ended or {}).get(c, "") for c in villages["code"]]
    )


def within(bounds: tuple[float, ...], xlim: tuple[float, float], ylim: tuple[float, float]) -> bool:
    """Whether the box ``bounds`` (minx, miny, maxx, maxy) lies strictly inside the view."""
    return xlim[0] < bounds[0] and bounds[2] < xlim[1] and ylim[0] < bounds[1] and bounds[3] < ylim[1]


def legend_texts(figure: Any) -> list[str]:
    # Long labels are wrapped onto lines (and a count kept whole): compare them as single-spaced text.
    return [" ".join(t.get_text().split()) for t in figure.axes[0].get_legend().get_texts()]


def texts_with(figure: Any, gid: str) -> list[str]:
    return [t.get_text() for t in figure.axes[0].texts if t.get_gid() == gid]


def collections(figure: Any) -> dict[str, Any]:
    return {c.get_gid(): c for c in figure.axes[0].collections if c.get_gid()}


def areas_frame(*rows: tuple[str, str, str, bool, Any]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "identifier": [r[0] for r in rows],
            "event": [r[1] for r in rows],
            "label": [r[2] for r in rows],
            "estimate": [r[3] for r in rows],
        },
        geometry=[r[4] for r in rows],
        crs="EPSG:4326",
    )


def test_png_heading_is_the_region_and_the_warnings_in_force(make_villages, warnings_frame):
    active = (
        ActiveWarning("CBT1", "Hujan Lebat dan Petir", "BMKG"),
        ActiveWarning("CBT2", "Hujan Lebat dan Petir", "BMKG"),
        ActiveWarning("ews.gempa.X", "Gempabumi Berpotensi Tsunami", "info gempa BMKG, perkiraan EWS"),
    )
    figure = risk_map_figure(make_villages(), warnings_frame, make_title(region="Jawa Timur", active=active), dpi=40)
    assert figure.get_suptitle() == "Jawa Timur: 3 peringatan aktif"
    lines = [t.get_text() for t in figure.texts]
    # How many, which hazards, who issued them: two BMKG nowcasts and ews's own earthquake estimate.
    assert "Hujan Lebat dan Petir (BMKG) ×2 · Gempabumi Berpotensi Tsunami (info gempa BMKG, perkiraan EWS)" in lines
    assert "Peringatan: CBT1, CBT2, ews.gempa.X" in lines
    assert "Berlaku 24 Sep 2026 15:27–17:27 WITA" in lines


def test_png_heading_without_a_warning_in_force(make_villages, no_warnings):
    figure = risk_map_figure(
        make_villages({}), no_warnings, make_title(active=(), as_of=datetime(2026, 9, 24, 18, 5, tzinfo=WITA))
    )
    assert figure.get_suptitle() == "Gorontalo: tidak ada peringatan aktif"
    lines = [t.get_text() for t in figure.texts]
    assert "Tidak ada peringatan yang berlaku · keadaan 24 Sep 2026 18:05 WITA" in lines
    assert not any(line.startswith("Peringatan:") for line in lines)


def test_png_legend_names_who_drew_each_area(make_villages):
    tsunami = "radius tsunami 300 km dari pusat gempa – perkiraan EWS"
    both = areas_frame(
        ("CBT1", "Hujan Lebat", "area peringatan BMKG", False, box(112.005, -7.499, 112.015, -7.495)),
        ("ews.gempa.X", "Gempabumi", tsunami, True, Point(112.02, -7.49).buffer(0.02)),
    )
    figure = risk_map_figure(make_villages(), both, make_title(), dpi=40)
    legend = legend_texts(figure)
    assert "area peringatan BMKG (1)" in legend
    assert f"{tsunami} (1)" in legend
    drawn = collections(figure)
    assert len(drawn["areas-issuer"].get_paths()) == 1
    assert len(drawn["areas-estimate"].get_paths()) == 1
    assert drawn["areas-estimate"].get_linestyle()[0][1] is not None  # dashed: ews's own estimate
    assert drawn["areas-issuer"].get_linestyle()[0][1] is None  # solid: the issuer's polygon

    # ews's own circle alone is never called a BMKG area.
    own = risk_map_figure(make_villages(), both.iloc[1:], make_title(), dpi=40)
    assert not any("BMKG" in label for label in legend_texts(own))
    page = risk_map_html(make_villages(), both.iloc[1:], make_title())
    assert "area peringatan BMKG" not in page
    assert f"{tsunami} (1)</li>" in page
    assert page.count('<path class="w e"') == 1

    # Without a label column an area is BMKG's (what the renderers always drew).
    assert "area peringatan BMKG (1)" in legend_texts(
        risk_map_figure(make_villages(), both.iloc[:1][["identifier", "event", "geometry"]], make_title(), dpi=40)
    )


def test_png_draws_ended_alerts_hatched_and_named_never_as_a_level(make_villages, no_warnings):
    # A (Siaga) was cancelled this run, C (Siaga) expired: both keep their old level only for the tooltip.
    villages = with_columns(make_villages(), {A: "cancel", C: "end"})
    figure = risk_map_figure(villages, no_warnings, make_title(active=()), dpi=40)
    drawn = collections(figure)
    assert len(drawn["ended-cancel"].get_paths()) == 1
    assert len(drawn["ended-end"].get_paths()) == 1
    assert drawn["ended-cancel"].get_hatch() != drawn["ended-end"].get_hatch()
    level_fills = {to_hex(c) for c in drawn["levels"].get_facecolor()}
    for kind in ("ended-cancel", "ended-end"):
        assert drawn[kind].get_hatch()
        assert {to_hex(c) for c in drawn[kind].get_facecolor()}.isdisjoint(LEVEL_COLOURS.values())
    assert len(drawn["levels"].get_paths()) == 3  # B, D, E
    assert LEVEL_COLOURS[Level.SIAGA] not in level_fills  # the only Siaga villages ended
    assert texts_with(figure, "label-cancel") == ["DICABUT"]
    assert texts_with(figure, "label-end") == ["BERAKHIR"]
    legend = legend_texts(figure)
    assert "DICABUT: peringatan dicabut (1 desa)" in legend
    assert "BERAKHIR: peringatan berakhir (1 desa)" in legend
    assert "Siaga (0 desa)" in legend


def test_html_draws_ended_alerts_hatched_and_named(make_villages, no_warnings):
    page = risk_map_html(with_columns(make_villages(), {A: "cancel", C: "end"}), no_warnings, make_title(active=()))
    path_a = re.search(rf'<path class="v end-cancel" fill="url\(#hatch-cancel\)"[^>]*data-code="{A}"[^>]*/>', page)
    assert path_a is not None
    assert 'data-level-label="DICABUT (sebelumnya Siaga)"' in path_a.group()
    assert 'data-ended="cancel"' in path_a.group()
    assert re.search(rf'<path class="v end-end" fill="url\(#hatch-end\)"[^>]*data-code="{C}"', page)
    assert set(village_fills(page)) == {B, D, E}  # only villages whose level stands are filled by level
    assert '<text class="k cancel"' in page
    assert ">DICABUT</text>" in page
    assert ">BERAKHIR</text>" in page
    assert "DICABUT: peringatan dicabut (1 desa)</li>" in page
    # The table lists the levels in force, then the ended alerts.
    assert re.findall(r'<tr data-code="([^"]+)">', page) == [B, E, A, C]
    assert "<td>DICABUT (sebelumnya Siaga)</td>" in page


def test_view_covers_every_village_with_a_level_or_an_ended_alert_whatever_the_areas(make_villages):
    villages = with_columns(make_villages({A: 2, B: 3}), {E: "end"})
    # A nowcast of another province (106E) in the same feed, and one over A and B.
    areas = areas_frame(
        ("CBT1", "Hujan", "area peringatan BMKG", False, box(112.005, -7.499, 112.015, -7.495)),
        ("CBT2", "Hujan", "area peringatan BMKG", False, box(106.0, -6.5, 106.3, -6.2)),
    )
    figure = risk_map_figure(villages, areas, make_title(), dpi=40)
    (x0, x1), (y0, y1) = figure.axes[0].get_xlim(), figure.axes[0].get_ylim()
    for code in (A, B, E):  # every leveled village, and the ended one, whole, with room to spare
        minx, miny, maxx, maxy = GEOMETRY[code].bounds
        assert within((minx, miny, maxx, maxy), (x0, x1), (y0, y1)), code
    assert x0 > 111.9  # the far polygon does not widen the view
    assert "area peringatan BMKG (1)" in legend_texts(figure)  # only the area in view is in the legend
    page = risk_map_html(villages, areas, make_title())
    assert page.count('<path class="w"') == 1


def test_kabkota_names_are_written_once_each_legibly_without_overlap(make_villages, warnings_frame):
    figure = risk_map_figure(with_columns(make_villages()), warnings_frame, make_title(), dpi=60)
    labels = [t for t in figure.axes[0].texts if t.get_gid() == "label-kabkota"]
    names = [t.get_text() for t in labels]
    assert sorted(names) == ["Kab. Satu", "Kab. Tiga", "Kota Dua"]  # once per kab/kota, not once per village
    assert all(t.get_fontsize() >= 7 for t in labels)
    assert all(t.get_path_effects() for t in labels)  # a white halo over the village fills
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    page = risk_map_html(with_columns(make_villages()), warnings_frame, make_title())
    assert sorted(re.findall(r'<text class="k"[^>]*>([^<]*)</text>', page)) == ["Kab. Satu", "Kab. Tiga", "Kota Dua"]


def test_kabkota_labels_that_would_collide_are_left_out(make_villages, warnings_frame):
    # A long kab/kota name on each of five small villages: not all fit, and those that do never overlap.
    villages = make_villages().assign(kabkota=[f"Kabupaten Nama Panjang Sekali {i}" for i in range(5)])
    figure = risk_map_figure(villages, warnings_frame, make_title(), dpi=60)
    labels = [t for t in figure.axes[0].texts if t.get_gid() == "label-kabkota"]
    assert 1 <= len(labels) < 5
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_an_exercise_is_stamped_latihan_on_both_maps(make_villages, warnings_frame):
    title = make_title(exercise=True)
    figure = risk_map_figure(make_villages(), warnings_frame, title, dpi=40)
    assert figure.get_suptitle() == "LATIHAN – Gorontalo: 1 peringatan aktif"
    assert texts_with(figure, "exercise") == ["LATIHAN"]  # across the map
    assert any(t.get_text() == "LATIHAN" and t.get_gid() == "exercise-badge" for t in figure.texts)
    png = risk_map_png(make_villages(), warnings_frame, title, dpi=30)
    assert b"Peta risiko: LATIHAN" in png  # the PNG's Title text chunk: a program can tell without pixels
    page = risk_map_html(make_villages(), warnings_frame, title)
    assert "<title>Peta risiko: LATIHAN – Gorontalo: 1 peringatan aktif</title>" in page
    assert '<p class="exercise">LATIHAN / EXERCISE: bukan peringatan sungguhan</p>' in page
    assert re.search(r'<text class="x"[^>]*>LATIHAN</text>', page)

    real = make_title()
    assert "LATIHAN" not in risk_map_html(make_villages(), warnings_frame, real)
    assert b"LATIHAN" not in risk_map_png(make_villages(), warnings_frame, real, dpi=30)
    assert "LATIHAN" not in " ".join(
        t.get_text() for t in risk_map_figure(make_villages(), warnings_frame, real, dpi=30).texts
    )


def test_an_exercise_warning_in_a_real_run_is_marked_alone(make_villages, warnings_frame):
    active = (ActiveWarning("CBT1", "Hujan Lebat", "BMKG"), ActiveWarning("CBT9", "Banjir", "BMKG", exercise=True))
    figure = risk_map_figure(make_villages(), warnings_frame, make_title(active=active), dpi=30)
    assert figure.get_suptitle() == "Gorontalo: 2 peringatan aktif"
    assert "Hujan Lebat (BMKG) · Banjir (BMKG) [LATIHAN]" in [t.get_text() for t in figure.texts]
    assert texts_with(figure, "exercise") == []


def test_png_legend_takes_names_from_data_literally(make_villages):
    # A CAP sender or event with "$...$" must not switch the legend to mathtext (and fail to draw).
    odd = areas_frame(
        ("X1", "Banjir", r"area peringatan CAP $\frac{a$@example.org", False, box(112.0, -7.5, 112.01, -7.49))
    )
    png = risk_map_png(make_villages(), odd, make_title(), dpi=30)
    assert png.startswith(PNG_SIGNATURE)
    assert r"area peringatan CAP $\frac{a$@example.org (1)" in legend_texts(
        risk_map_figure(make_villages(), odd, make_title())
    )


def test_unknown_ended_value_names_the_village(make_villages, warnings_frame):
    villages = make_villages().assign(ended=["", "", "expired", "", ""])
    with pytest.raises(DataValidationError, match=rf"village {re.escape(C)}: ended 'expired' is not"):
        risk_map_html(villages, warnings_frame, make_title())


# ------------------------------------------------------------------------------- national scale


def test_both_maps_draw_the_outline_under_the_villages_and_count_what_it_stands_for(make_villages, warnings_frame):
    from ews.review.riskmap import Outline

    outline = Outline(box(111.99, -7.51, 112.05, -7.47), villages=68685)
    figure = risk_map_figure(make_villages(), warnings_frame, make_title(), outline=outline, dpi=40)
    drawn = collections(figure)
    assert len(drawn["outline"].get_paths()) == 1
    assert drawn["outline"].get_zorder() < drawn["levels"].get_zorder()
    assert "tidak terdampak (68686 desa)" in legend_texts(figure)  # D, and the villages the outline stands for
    page = risk_map_html(make_villages(), warnings_frame, make_title(), outline=outline)
    assert page.index('<path class="o" fill="#e0e0e0"') < page.index('<path class="v"')
    assert "tidak terdampak (68686 desa)" in page
    rainy = risk_map_html(make_villages(), warnings_frame, make_title(), outline=outline, raster=rain_layer())
    assert '<path class="o" fill="none"' in rainy


def test_a_page_with_many_listed_villages_carries_their_data_once(make_villages, warnings_frame, monkeypatch):
    import json

    import ews.review.riskmap as riskmap

    monkeypatch.setattr(riskmap, "_HTML_INLINE_ROWS", 2)  # the five villages stand for a national page
    villages = with_columns(make_villages(), {C: "cancel"})
    page = risk_map_html(villages, warnings_frame, make_title())
    # Listed (leveled or ended): their paths point at a row of the JSON; D, untouched, keeps its attributes.
    assert len(re.findall(r"data-row=", page)) == 4
    assert re.search(rf'<path class="v" fill="#e0e0e0" d="[^"]*" data-code="{D}" data-name="Delta"', page)
    found = re.search(r'<script type="application/json" id="villages">(.*?)</script>', page)
    assert found is not None
    assert XSS not in page  # B's name, escaped inside the JSON too
    assert page.count("<script>") == 1
    data = json.loads(found.group(1))
    # The table's order: B Awas, A Siaga, E Waspada, then C whose alert was cancelled.
    assert [r[0] for r in data["rows"]] == [B, A, E, C]
    assert data["rows"][0][1] == XSS
    assert data["rows"][1][3:] == ["Siaga", "40%", "1.234"]
    assert data["rows"][3][3:] == ["DICABUT (sebelumnya Siaga)", "–", "–"]
    assert [data["kec"][r[2]] for r in data["rows"]] == ["Satu", "Satu", "Tiga", "Dua"]
    assert '<path class="v end-cancel" fill="url(#hatch-cancel)"' in page
    assert "<tr data-code" not in page  # the script builds the rows from the JSON


def test_villages_a_pixel_wide_are_edged_in_their_own_colour(make_villages, warnings_frame):
    # Regional: the 0.01-degree villages are ~100 px wide, with white edges between them.
    regional = collections(risk_map_figure(make_villages(), warnings_frame, make_title(), dpi=40))["levels"]
    assert to_hex(regional.get_edgecolor()[0]) == "#ffffff"
    # A leveled village 8 degrees east widens the view: each village is about a pixel (a national map).
    far = make_villages().iloc[:1].assign(code="35.99.01.2001", geometry=[box(120.0, -7.5, 120.01, -7.49)])
    wide = gpd.GeoDataFrame(pd.concat([make_villages(), far]), crs="EPSG:4326")
    national = collections(risk_map_figure(wide, warnings_frame, make_title(), dpi=40))["levels"]
    assert [to_hex(c) for c in national.get_edgecolor()] == [to_hex(c) for c in national.get_facecolor()]


def test_the_png_colours_only_the_rain_in_view_on_the_whole_layers_scale() -> None:
    layer = rain_layer()  # 30 x 20 cells of 0.001 degree from 111.995E, 7.49S; 60 mm in rows 5-14, cols 10-19
    shown = layer.rgba_in((112.0045, -7.5055, 112.0075, -7.5005), max_px=100)
    assert shown is not None
    rgba, bounds = shown
    # Columns 9-12 and rows 10-15 hold the view: whole cells, their bounds snapped to the grid.
    assert rgba.shape == (6, 4, 4)
    assert bounds == pytest.approx((112.004, -7.506, 112.008, -7.500))
    assert np.array_equal(rgba[0, 1:], layer.rgba()[10, 10:13])  # coloured as the whole layer is
    assert layer.rgba_in((113.0, -7.5, 113.1, -7.4), max_px=100) is None  # nothing of it in view
    assert layer.rgba_in(layer.bounds, max_px=10)[0].shape == (7, 10, 4)  # type: ignore[index]  # every 3rd cell
