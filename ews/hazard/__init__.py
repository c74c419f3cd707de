"""Hazard layers from rasters, forecasts and earthquakes (pure)."""
