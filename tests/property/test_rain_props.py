"""Invariants of rain levels and accumulations: more rain never lowers a level; totals add up."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from ews.config import RainRules
from ews.hazard.rainfall import rain_accumulation, rain_levels

RULES = RainRules()
amounts = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)


@given(amounts, amounts, amounts, amounts)
def test_more_rain_never_lowers_a_level(h1: float, h2: float, d1: float, d2: float) -> None:
    lo_h, hi_h = sorted((h1, h2))
    lo_d, hi_d = sorted((d1, d2))
    lo_level, lo_held = rain_levels([lo_h], [lo_d], RULES)
    hi_level, hi_held = rain_levels([hi_h], [hi_d], RULES)
    assert lo_level[0] <= hi_level[0]
    assert lo_held[0] <= hi_held[0]
    assert lo_level[0] <= lo_held[0]  # the held level is never below the level


@given(
    st.lists(st.floats(min_value=0.0, max_value=100.0, allow_nan=False, width=32), min_size=1, max_size=30),
    st.sampled_from([0.5, 1.0, 3.0]),
)
def test_accumulation_is_the_sum_of_rate_times_step(series: list[float], step: float) -> None:
    start = np.datetime64(datetime(2026, 9, 24), "ns")
    times = start + (np.arange(len(series)) * step * 3600e9).astype("timedelta64[ns]")
    da = xr.DataArray(
        np.asarray(series, dtype=np.float32)[:, None, None],
        dims=("time", "y", "x"),
        coords={"time": times, "y": [0.0], "x": [0.0]},
        attrs={"units": "mm/h", "step_hours": step},
    )
    total = rain_accumulation(da, len(series) * step)
    expected = float(np.asarray(series, dtype=np.float32).astype(np.float64).sum() * step)
    assert float(total[0, 0]) == pytest.approx(expected, rel=1e-12, abs=1e-12)
