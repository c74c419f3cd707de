"""Village coverage on tiny hand-made squares, with the expected values worked out by hand."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box

from ews.exposure.coverage import VillageLayer, village_coverage
from ews.exposure.population import area_share_estimate, people_exposed


def villages(*squares: tuple[str, tuple[float, float, float, float]]) -> VillageLayer:
    frame = gpd.GeoDataFrame(
        {"code": [c for c, _ in squares], "name": [f"Desa {c[-4:]}" for c, _ in squares]},
        geometry=[box(*b) for _, b in squares],
        crs="EPSG:4326",
    )
    return VillageLayer.from_villages(frame)


# Two 0.1 x 0.1 degree villages side by side on the equator:
#   A = lon 112.0..112.1, B = lon 112.1..112.2, both lat -0.1..0.0.
TWO = (("35.01.01.2001", (112.0, -0.1, 112.1, 0.0)), ("35.01.01.2002", (112.1, -0.1, 112.2, 0.0)))


def test_half_and_quarter_by_hand() -> None:
    # Hazard lon 112.05..112.15, lat -0.05..0.05. In a cylindrical equal-area projection x is linear in
    # longitude and y is (near the equator) linear in latitude, so each village is covered by a
    # 0.05 x 0.05 degree corner of its 0.1 x 0.1 cell: 1/4 each.
    layer = villages(*TWO)
    rows = village_coverage(layer, box(112.05, -0.05, 112.15, 0.05))
    assert list(rows["code"]) == ["35.01.01.2001", "35.01.01.2002"]  # equal fractions: by code
    assert rows["fraction"].tolist() == pytest.approx([0.25, 0.25], abs=1e-6)


def test_whole_village_and_none() -> None:
    # Hazard covers A entirely and 3/10 of B's width: A -> 1.0, B -> 0.3.
    layer = villages(*TWO)
    rows = village_coverage(layer, box(111.9, -0.2, 112.13, 0.1))
    assert rows["fraction"].tolist() == pytest.approx([1.0, 0.3], abs=1e-6)
    assert village_coverage(layer, box(120.0, 1.0, 121.0, 2.0)).empty


def test_area_km2_is_geodesic() -> None:
    # At the equator one degree of longitude is 111.320 km and one of latitude 110.574 km,
    # so a 0.1 x 0.1 degree cell is 11.1320 x 11.0574 = 123.09 km^2.
    layer = villages(TWO[0])
    rows = village_coverage(layer, box(111.0, -1.0, 113.0, 1.0))
    assert rows["area_km2"].iloc[0] == pytest.approx(123.09, rel=2e-3)
    assert rows["covered_km2"].iloc[0] == pytest.approx(rows["area_km2"].iloc[0])


def test_equal_area_not_degrees_away_from_the_equator() -> None:
    # A village lat -8.0..-7.0; the hazard covers its southern half in degrees (-8.0..-7.5).
    # Equal-area share = (sin 8 - sin 7.5) / (sin 8 - sin 7) = (0.139173 - 0.130526) / (0.139173 - 0.121869)
    # = 0.008647 / 0.017304 = 0.49971 on the sphere: less than the 0.5 a degree-based overlay gives.
    layer = villages(("35.01.01.2001", (112.0, -8.0, 113.0, -7.0)))
    fraction = village_coverage(layer, box(111.0, -9.0, 114.0, -7.5))["fraction"].iloc[0]
    assert fraction == pytest.approx(0.49971, abs=5e-5)
    assert fraction < 0.5


def test_multipolygon_hazard_adds_up() -> None:
    # Two hazard strips each covering 0.02 degrees of A's 0.1 width: 0.2 + 0.2 = 0.4.
    from shapely.geometry import MultiPolygon

    layer = villages(TWO[0])
    hazard = MultiPolygon([box(112.0, -0.2, 112.02, 0.1), box(112.05, -0.2, 112.07, 0.1)])
    assert village_coverage(layer, hazard)["fraction"].iloc[0] == pytest.approx(0.4, abs=1e-6)


def test_layer_refuses_projected_input() -> None:
    frame = gpd.GeoDataFrame({"code": ["x"], "name": ["x"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:3857")
    with pytest.raises(ValueError, match="EPSG:4326"):
        VillageLayer.from_villages(frame)


def test_area_share_estimate_by_hand() -> None:
    # Kab 35.01 has 400 people over villages of 1 and 3 km^2 -> 100 and 300; kab 35.02 has no total.
    import numpy as np
    import pandas as pd

    population, missing = area_share_estimate(
        pd.Series(["35.01", "35.01", "35.02"]), np.array([1.0, 3.0, 2.0]), {"35.01": 400.0}
    )
    assert population[:2].tolist() == [100.0, 300.0]
    assert np.isnan(population[2])
    assert missing == ["35.02"]
    assert people_exposed(np.array([100.0, 300.0]), np.array([0.5, 0.1])).tolist() == pytest.approx([50.0, 30.0])
