"""Accumulations, BMKG rain categories, levels with hysteresis and the region's rain message (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import xarray as xr

from ews.config import RAIN_CATEGORIES, RainRules
from ews.errors import DataValidationError, RasterError
from ews.hazard.rainfall import rain_accumulation, rain_category, rain_levels, rain_message
from ews.types import Level

T0 = datetime(2026, 9, 24, 0, 0, tzinfo=UTC)
RULES = RainRules()
CAT = {name: i for i, name in enumerate(RAIN_CATEGORIES)}


def rates(series: list[list[float]], *, step_hours: float = 1.0, start: datetime = T0) -> xr.DataArray:
    """Rain rates (mm/h) on a 1 x N grid: ``series[k]`` is the row of step k."""
    values = np.asarray(series, dtype=np.float32)[:, None, :]
    times = [
        np.datetime64(start.replace(tzinfo=None) + timedelta(hours=step_hours * k), "ns") for k in range(len(series))
    ]
    return xr.DataArray(
        values,
        dims=("time", "y", "x"),
        coords={"time": times, "y": [-7.05], "x": 110.05 + 0.1 * np.arange(values.shape[2])},
        attrs={"units": "mm/h", "step_hours": step_hours, "source": "rain.tif", "crs": "EPSG:4326",
               "transform": (0.1, 0.0, 110.0, 0.0, -0.1, -7.0)},
    )  # fmt: skip


# Cell 0 rains k + 1 mm/h in hour k (1, 2, ..., 24); cell 1 a constant 2 mm/h.
DAY = rates([[k + 1.0, 2.0] for k in range(24)])


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (1, 24.0),  # the last hour only
        (3, 22 + 23 + 24),
        (6, sum(range(19, 25))),
        (24, 24 * 25 / 2),  # 1 + ... + 24 = 300
    ],
)
def test_accumulation_over_windows(hours: float, expected: float) -> None:
    total = rain_accumulation(DAY, hours)
    assert total.dims == ("y", "x")
    assert float(total[0, 0]) == pytest.approx(expected)
    assert float(total[0, 1]) == pytest.approx(2.0 * hours)
    assert total.attrs["units"] == "mm"
    assert total.attrs["window_hours"] == hours
    assert total.attrs["end"] == "2026-09-25T00:00Z"
    assert total.attrs["transform"] == DAY.attrs["transform"]


def test_accumulation_with_explicit_end() -> None:
    total = rain_accumulation(DAY, 3, end=T0 + timedelta(hours=12))
    assert float(total[0, 0]) == pytest.approx(10 + 11 + 12)  # hours 9, 10, 11 rain 10, 11, 12 mm/h
    assert total.attrs["start"] == "2026-09-24T09:00Z"
    # The end may carry any offset: 19:00+07:00 is 12:00Z.
    local = rain_accumulation(DAY, 3, end=datetime(2026, 9, 24, 19, tzinfo=timezone(timedelta(hours=7))))
    assert float(local[0, 0]) == float(total[0, 0])


def test_half_hourly_steps_weigh_by_step_duration() -> None:
    half = rates([[2.0], [4.0], [6.0], [8.0]], step_hours=0.5)
    assert float(rain_accumulation(half, 1)[0, 0]) == pytest.approx(0.5 * 6 + 0.5 * 8)
    assert float(rain_accumulation(half, 2)[0, 0]) == pytest.approx(10.0)


def test_accumulation_refuses_a_window_longer_than_the_data() -> None:
    three = rates([[1.0], [1.0], [1.0]])
    with pytest.raises(RasterError, match=r"rain\.tif: a 24 h accumulation ending 2026-09-24T03:00Z lacks 21 h"):
        rain_accumulation(three, 24)
    with pytest.raises(RasterError, match="missing 2026-09-23T03:00Z–2026-09-24T00:00Z"):
        rain_accumulation(three, 24)


def test_accumulation_names_a_gap_in_the_middle() -> None:
    gappy = rates([[1.0], [1.0], [1.0], [1.0]]).isel(time=[0, 1, 3])  # 02:00-03:00 missing
    with pytest.raises(RasterError, match=r"lacks 1 h of 4 h of rain: missing 2026-09-24T02:00Z–2026-09-24T03:00Z"):
        rain_accumulation(gappy, 4)
    assert float(rain_accumulation(gappy, 1)[0, 0]) == 1.0  # the last hour is there


def test_accumulation_window_must_fall_on_steps() -> None:
    with pytest.raises(RasterError, match="step boundaries"):
        rain_accumulation(DAY, 1.5)
    with pytest.raises(RasterError, match="step boundaries"):
        rain_accumulation(DAY, 1, end=T0 + timedelta(hours=5, minutes=30))


def test_accumulation_nan_in_any_step_is_nan() -> None:
    series = rates([[1.0, 1.0], [math.nan, 1.0], [1.0, 1.0]])
    total = rain_accumulation(series, 3)
    assert math.isnan(float(total[0, 0]))
    assert float(total[0, 1]) == 3.0
    assert float(rain_accumulation(series, 1)[0, 0]) == 1.0  # the NaN hour is outside the last hour


def test_accumulation_needs_rates() -> None:
    with pytest.raises(RasterError, match="units='mm/h'"):
        rain_accumulation(DAY.assign_attrs(units="mm"), 1)


def test_categories_at_exact_bmkg_bounds() -> None:
    hourly = rain_category([0.99, 1.0, 4.99, 5.0, 9.99, 10.0, 19.99, 20.0, 500.0, math.nan], RULES.hourly_mm)
    assert list(hourly) == [
        -1, CAT["ringan"], CAT["ringan"], CAT["sedang"], CAT["sedang"], CAT["lebat"],
        CAT["lebat"], CAT["sangat_lebat"], CAT["sangat_lebat"], -1,  # no hourly "ekstrem" in BMKG's table
    ]  # fmt: skip
    daily = rain_category(np.array([[0.4, 50.0], [149.99, 150.0]]), RULES.daily_mm)
    assert daily.dtype == np.int8
    assert daily.shape == (2, 2)
    assert daily.tolist() == [[-1, CAT["lebat"]], [CAT["sangat_lebat"], CAT["ekstrem"]]]


def test_levels_take_the_higher_window_and_hold_with_hysteresis() -> None:
    # Hourly bounds lebat 10 (Waspada), sangat lebat 20 (Siaga); with hysteresis 0.2 they hold down to 8 and 16.
    hourly = np.array([9.99, 10.0, 20.0, 8.5, 17.0, math.nan, 1.0])
    daily = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 150.0, 120.0])  # 150 = ekstrem (Awas), 120 >= 0.8 * 150
    level, held = rain_levels(hourly, None, RULES)
    assert level.tolist() == [0, 1, 2, 0, 1, 0, 0]
    assert held.tolist() == [1, 1, 2, 1, 2, 0, 0]
    level, held = rain_levels(hourly, daily, RULES)
    assert level.tolist() == [0, 1, 2, 0, 1, 3, 2]  # 120 mm/24 h is sangat lebat (Siaga)
    assert held.tolist() == [1, 1, 2, 1, 2, 3, 3]
    assert (held >= level).all()
    level, _ = rain_levels(None, daily, RULES)
    assert level.tolist() == [0, 0, 0, 0, 0, 3, 2]


def test_levels_need_some_input() -> None:
    with pytest.raises(DataValidationError, match="give hourly_mm, daily_mm or both"):
        rain_levels(None, None, RULES)
    with pytest.raises(DataValidationError, match="shapes differ"):
        rain_levels([1.0], [1.0, 2.0], RULES)


def test_rain_message_fields() -> None:
    end = datetime(2026, 9, 24, 10, 0, tzinfo=timezone(timedelta(hours=7)))  # 03:00Z
    codes = ["35.99.01.2003", "35.99.01.2001", "35.99.01.2002", "35.99.01.2004"]
    hourly = [25.0, 0.0, 8.5, 0.0]
    daily = [60.0, 10.0, 30.0, 0.0]
    message = rain_message("demo", codes, hourly, daily, end, "/data/gsmap_nrt.20260924.0200.dat.gz", RULES,
                           fractions=[0.9, 1.0, 0.5, 1.0])  # fmt: skip

    w = message.warning
    assert w.identifier == "ews.rain.demo.20260924T0300Z"
    assert (w.msg_type, w.references, w.sender, w.status) == ("Update", ("ews.rain.demo",), "ews", "Actual")
    assert w.sent == end
    assert w.effective == end
    assert w.expires == end + timedelta(hours=3)
    assert (w.event, w.language, w.urgency, w.certainty) == ("Hujan Lebat", "id", "Immediate", "Observed")
    assert w.severity == "Severe"  # the highest level is Siaga (25 mm/h >= 20)
    assert w.headline.startswith("Hujan lebat terpantau satelit")
    assert w.geometry.is_empty
    assert w.polygon_count == 0
    assert w.source == "/data/gsmap_nrt.20260924.0200.dat.gz"
    assert message.metric == "rain_24h_mm"
    # 2003: Siaga (25 mm/h; 60 mm/24 h is only Waspada). 2002: no level, but held Waspada (8.5 >= 0.8 x 10).
    assert [(v.code, v.level, v.held, v.value, v.fraction) for v in message.villages] == [
        ("35.99.01.2002", Level.NONE, Level.WASPADA, 30.0, 0.5),
        ("35.99.01.2003", Level.SIAGA, Level.SIAGA, 60.0, 0.9),
    ]
    assert message.details["window_hours"] == 24.0
    assert message.details["max_mm"] == 60.0
    assert message.details["max_1h_mm"] == 25.0
    assert message.details["raster_end"] == "2026-09-24T03:00:00+00:00"
    assert message.details["villages_siaga"] == 1


def test_rain_message_hourly_only_and_quiet() -> None:
    message = rain_message("demo", ["a", "b"], [12.0, 1.0], None, T0, "x.tif", RULES)
    assert message.metric == "rain_1h_mm"
    assert message.details["window_hours"] == 1.0
    assert message.details["max_24h_mm"] is None
    assert [(v.code, v.level, v.value) for v in message.villages] == [("a", Level.WASPADA, 12.0)]
    assert message.warning.severity == "Moderate"

    quiet = rain_message("demo", ["a", "b"], [0.0, 1.0], [3.0, 0.0], T0, "x.tif", RULES)
    assert quiet.villages == ()
    assert quiet.warning.severity == "Minor"
    assert quiet.warning.headline == "Tidak ada hujan lebat terpantau satelit"


def test_rain_message_checks_inputs() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rain_message("demo", ["a"], [1.0], None, datetime(2026, 9, 24), "x.tif", RULES)
    with pytest.raises(DataValidationError, match="hourly_mm has 2 values for 1 villages"):
        rain_message("demo", ["a"], [1.0, 2.0], None, T0, "x.tif", RULES)


def test_a_village_without_data_keeps_its_alert_neither_cleared_nor_raised() -> None:
    from ews.alerts.lifecycle import ThreadMessage, decide
    from ews.alerts.model import Transition
    from ews.config import AlertRules, LevelRules

    codes = ["v1", "v2"]
    first = rain_message("r", codes, [25.0, 12.0], None, T0, "a.tif", RULES)
    gap = rain_message("r", codes, [math.nan, 0.0], None, T0 + timedelta(hours=1), "b.tif", RULES)
    v1 = next(v for v in gap.villages if v.code == "v1")
    assert (v1.level, v1.held) == (Level.NONE, Level.AWAS)
    assert math.isnan(v1.value)
    assert gap.details["villages_without_data"] == 1

    def step(states, h, now):
        w = h.warning
        message = ThreadMessage("ews.rain.r", w.identifier, w.sent, w.msg_type, w.status, w.severity, w.urgency,
                                w.certainty, w.expires)  # fmt: skip
        assessed = {"ews.rain.r": {v.code: (v.level, v.held) for v in h.villages}}
        return decide("r", states, [message], {}, now, LevelRules(), AlertRules(), assessed)

    out1 = step([], first, T0)
    assert {d.village_code: d.transition for d in out1.decisions} == {"v1": Transition.NEW, "v2": Transition.NEW}
    out2 = step(out1.states, gap, T0 + timedelta(hours=1))
    kinds = {d.village_code: d.transition for d in out2.decisions}
    assert kinds == {"v1": Transition.UNCHANGED, "v2": Transition.ALL_CLEAR}
