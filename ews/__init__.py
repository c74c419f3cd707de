"""ews: impact-based disaster early warning for Indonesia.

Data flows one way: ``ingest`` (BMKG, boundaries) -> ``exposure`` (village coverage) -> ``impact``
(levels) -> ``messages`` -> ``store``/outputs. Only ``ingest``, ``store``, ``review`` writers and the
front doors (``cli``, ``pipeline``) touch disk, network or the clock.
"""

__version__ = "0.1.0"
