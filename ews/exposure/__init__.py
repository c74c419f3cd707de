"""Pure: where hazards meet villages (polygon overlap, people exposed)."""
