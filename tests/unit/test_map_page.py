"""ews.review.map_page: an unchanged map's page is the last one's with the new instant, byte for byte."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from ews.review.map_page import PAGE, write_page
from ews.review.riskmap import ActiveWarning, MapTitle, Outline, RasterLayer, risk_map_html

WITA = timezone(timedelta(hours=8))
T1 = datetime(2026, 9, 24, 16, 5, tzinfo=WITA)
T2 = T1 + timedelta(minutes=10)


def villages(levels: tuple[int, ...] = (2, 3, 1)) -> gpd.GeoDataFrame:
    rows = [
        {"code": f"35.01.01.200{i}", "name": name, "level": level, "fraction": 0.4, "population_exposed": 10.0 * i,
         "kecamatan": "Satu", "geometry": box(112.0 + i * 0.01, -7.5, 112.01 + i * 0.01, -7.49)}
        for i, (name, level) in enumerate(zip(("Alpha", "<b>Beta</b>", "Gamma"), levels, strict=True))
    ]  # fmt: skip
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


AREAS = gpd.GeoDataFrame(
    {"identifier": ["CBT1"], "event": ["Hujan Lebat"]}, geometry=[box(112.0, -7.5, 112.02, -7.49)], crs="EPSG:4326"
)
RAIN = RasterLayer(np.arange(20.0).reshape(4, 5), (111.99, -7.51, 112.04, -7.48), "hujan (mm)")
OUTLINE = Outline(box(111.9, -7.6, 112.1, -7.4), 12)


def title(at: datetime | None, **changes: Any) -> MapTitle:
    fields: dict[str, Any] = {
        "region": "Jawa Timur", "active": (ActiveWarning("CBT1", "Hujan Lebat", "BMKG"),),
        "valid_from": T1 - timedelta(hours=1), "valid_until": T1 + timedelta(hours=2), "zone_name": "WITA",
        "population_note": None, "as_of": at,
    }  # fmt: skip
    fields.update(changes)
    return MapTitle(**fields)


def publish(folder: Path, previous: Path | None, at: datetime | None, **kw: Any) -> bool:
    folder.mkdir()
    args = {"villages": villages(), "areas": AREAS, "raster": RAIN, "outline": OUTLINE, "title": title(at)} | kw
    return write_page(folder, previous, args["villages"], args["areas"], args["title"], raster=args["raster"],
                      outline=args["outline"])  # fmt: skip


def fresh(at: datetime | None, **kw: Any) -> str:
    args = {"villages": villages(), "areas": AREAS, "raster": RAIN, "outline": OUTLINE, "title": title(at)} | kw
    return risk_map_html(args["villages"], args["areas"], args["title"], raster=args["raster"], outline=args["outline"])


def test_an_unchanged_map_is_the_last_page_with_the_new_instant(tmp_path: Path) -> None:
    assert not publish(tmp_path / "one", None, T1)
    assert (tmp_path / "one" / PAGE).read_text(encoding="utf-8") == fresh(T1)
    assert publish(tmp_path / "two", tmp_path / "one", T2)
    page = (tmp_path / "two" / PAGE).read_text(encoding="utf-8")
    assert page == fresh(T2)  # byte for byte what drawing it would give
    assert "keadaan 24 Sep 2026 16:15 WITA" in page
    assert "16:05" not in page
    # and again from the re-dated one
    assert publish(tmp_path / "three", tmp_path / "two", T2 + timedelta(minutes=10))
    assert (tmp_path / "three" / PAGE).read_text(encoding="utf-8") == fresh(T2 + timedelta(minutes=10))


@pytest.mark.parametrize(
    "change",
    [
        {"villages": villages((2, 2, 1))},  # a level
        {"areas": AREAS.assign(event=["Angin Kencang"])},
        {"raster": RasterLayer(np.arange(20.0).reshape(4, 5) * 2, RAIN.bounds, RAIN.label)},
        {"outline": Outline(OUTLINE.geometry, 13)},
        {"title": title(T2, valid_until=T1 + timedelta(hours=3))},
        {"title": title(T2, exercise=True)},
    ],
    ids=["level", "area", "rain", "outline", "validity", "exercise"],
)
def test_any_change_draws_the_page(tmp_path: Path, change: dict[str, Any]) -> None:
    publish(tmp_path / "one", None, T1)
    assert not publish(tmp_path / "two", tmp_path / "one", T2, **change)
    assert (tmp_path / "two" / PAGE).read_text(encoding="utf-8") == fresh(T2, **change)


def test_an_edited_page_is_not_trusted(tmp_path: Path) -> None:
    publish(tmp_path / "one", None, T1)
    page = tmp_path / "one" / PAGE
    page.write_text(page.read_text(encoding="utf-8").replace("Alpha", "Alfa"), encoding="utf-8")
    assert not publish(tmp_path / "two", tmp_path / "one", T2)
    assert (tmp_path / "two" / PAGE).read_text(encoding="utf-8") == fresh(T2)


def test_a_page_without_its_manifest_or_with_another_format_is_drawn(tmp_path: Path) -> None:
    publish(tmp_path / "one", None, T1)
    listed = tmp_path / "one" / "risk_map_page.json"
    document = json.loads(listed.read_text(encoding="utf-8"))
    listed.write_text(json.dumps({**document, "format": "ews-map-page/0"}), encoding="utf-8")
    assert not publish(tmp_path / "two", tmp_path / "one", T2)
    os.unlink(listed)
    assert not publish(tmp_path / "three", tmp_path / "one", T2)


def test_a_map_without_an_instant(tmp_path: Path) -> None:
    publish(tmp_path / "one", None, None)
    assert publish(tmp_path / "two", tmp_path / "one", None)
    assert (tmp_path / "two" / PAGE).read_text(encoding="utf-8") == fresh(None)
    assert not publish(tmp_path / "three", tmp_path / "two", T2)  # now it has one: drawn


def test_an_exercise_s_manifest_says_latihan(tmp_path: Path) -> None:
    publish(tmp_path / "one", None, T1, title=title(T1, exercise=True))
    assert json.loads((tmp_path / "one" / "risk_map_page.json").read_text(encoding="utf-8"))["exercise"] == "LATIHAN"
