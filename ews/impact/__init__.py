"""Pure: hazard at village x population x thresholds -> levels and people exposed."""
