"""Attach population to the villages table from the source a region configures."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ews.codes import normalize_code
from ews.config import PopulationSource
from ews.errors import DataValidationError
from ews.exposure.population import AREA_SHARE_METHOD, area_share_estimate


def _read_table(path: Path, id_field: str, value_field: str) -> dict[str, float]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            for f in (id_field, value_field):
                if f not in fields:
                    raise DataValidationError(f"{path}: no column '{f}' (columns: {', '.join(fields)})")
            out: dict[str, float] = {}
            for row_no, row in enumerate(reader, start=2):
                if row[id_field].strip() == "0":
                    continue  # the national total (Kemendagri's "0"), not an area of a region
                try:
                    code = normalize_code(row[id_field])
                    out[code] = float(row[value_field])
                except ValueError as exc:
                    raise DataValidationError(f"{path}: line {row_no}: {exc}") from None
            return out
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read population file ({exc.strerror})") from None


def attach_population(villages: gpd.GeoDataFrame, area_km2: np.ndarray, source: PopulationSource) -> gpd.GeoDataFrame:
    """Return ``villages`` with ``population`` (float, NaN = unknown) and ``population_source`` columns.

    Raises
    ------
    DataValidationError
        A population file or column is missing or holds a non-number (named with its line).
    """
    out = villages.copy()
    if source.method == "column":
        assert source.column is not None  # noqa: S101 - guaranteed by PopulationSource
        values = pd.to_numeric(out[source.column], errors="coerce")
        out["population"] = values.astype(float)
        out["population_source"] = f"column '{source.column}'"
    elif source.method == "csv":
        assert source.path is not None  # noqa: S101
        table = _read_table(source.path, source.id_field, source.value_field)
        out["population"] = out["code"].map(lambda c: table.get(c, np.nan)).astype(float)
        out["population_source"] = f"csv {source.path.name}"
    elif source.method == "kabkota_area_share":
        assert source.path is not None  # noqa: S101
        totals = _read_table(source.path, source.id_field, source.value_field)
        population, missing = area_share_estimate(out["kabkota"], area_km2, totals)
        out["population"] = population
        out["population_source"] = AREA_SHARE_METHOD
        out.attrs["population_missing"] = missing
    else:
        out["population"] = np.nan
        out["population_source"] = "unknown"
    out.attrs["population_estimated"] = source.method == "kabkota_area_share"
    return out
