"""Population per village and people exposed (pure).

Where only kabupaten/kota totals are published (as in the shared Kemendagri data), villages get an
*estimate*: the kab/kota total spread in proportion to village area. Urban villages are denser than
rural ones, so this under-counts towns and over-counts forests; every output labels it as an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray

AREA_SHARE_METHOD = "estimate: kab/kota total spread by village area share"


def area_share_estimate(
    kabkota: pd.Series, area_km2: NDArray[np.float64], totals: Mapping[str, float]
) -> tuple[NDArray[np.float64], list[str]]:
    """Spread each kab/kota total over its villages in proportion to their area.

    Parameters
    ----------
    kabkota
        Kab/kota code of each village (``"35.78"``).
    area_km2
        Area of each village in km^2 (equal-area projection), same order.
    totals
        People per kab/kota code.

    Returns
    -------
    (population, missing)
        Estimated people per village (NaN where the kab/kota has no total) and the kab/kota codes
        without a total, sorted.

    Examples
    --------
    Two villages of 1 and 3 km^2 in a kab/kota of 400 people get 100 and 300.
    """
    frame = pd.DataFrame({"kabkota": kabkota.to_numpy(), "area": area_km2})
    sums = frame.groupby("kabkota")["area"].transform("sum").to_numpy()
    total = frame["kabkota"].map(lambda k: totals.get(k, np.nan)).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        population = np.where(sums > 0, total * area_km2 / sums, np.nan)
    missing = sorted(set(frame["kabkota"][np.isnan(total)]))
    return population, missing


def people_exposed(population: NDArray[np.float64], fraction: NDArray[np.float64]) -> NDArray[np.float64]:
    """People in the covered part of each village, assuming people spread evenly over its area."""
    exposed: NDArray[np.float64] = np.asarray(population, dtype=float) * np.asarray(fraction, dtype=float)
    return exposed
