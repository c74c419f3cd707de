"""How long a warning takes from its source to a phone: per-stage latency of the send ledger's messages.

Pure. Each message's timeline (:meth:`ews.store.repository.Store.message_timelines`) holds when its source
was sent (CAP ``<sent>``, a quake's origin time, a raster's end), first seen by ews, decided (its alert version
stored), queued, handed to the provider, accepted by it and reported delivered. :func:`summarise` gives, per
stage, the median, 90th percentile and worst delay from the source's ``<sent>``; :func:`latency_lines` words it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

STAGES: tuple[tuple[str, str], ...] = (
    ("seen", "first seen by ews"),
    ("decided", "decided"),
    ("queued", "queued"),
    ("handed", "handed to the provider"),
    ("accepted", "accepted by the provider"),
    ("delivered", "reported delivered"),
)
"""The stages of a message's life after its source was sent, in order, with the words used for them."""


def _percentile(values: Sequence[tuple[float, int]], q: float) -> float:
    """The ``q`` quantile (0..1) of (value, how many times) by nearest rank: a value that happened.

    Not an interpolation; the same as the quantile of the values repeated.
    """
    ordered = sorted(values)
    rank = max(1, math.ceil(q * sum(n for _, n in ordered)))
    seen = 0
    for value, n in ordered:
        seen += n
        if seen >= rank:
            return value
    return ordered[-1][0]


def _count(timeline: Mapping[str, object]) -> int:
    count = timeline.get("count", 1)
    return count if isinstance(count, int) else 1


def summarise(timelines: Sequence[Mapping[str, datetime | None]]) -> dict[str, dict[str, float]]:
    """Stage -> ``{"n", "median_s", "p90_s", "worst_s"}``: the delay from ``sent`` (stages nobody reached: left out).

    A delay below zero (a source whose ``<sent>`` is in the future of ews's clock) counts as zero. A timeline
    with a ``count`` stands for that many messages (``Store.message_timelines(..., grouped=True)``).
    """
    out: dict[str, dict[str, float]] = {}
    for stage, _ in STAGES:
        delays = [
            (max(0.0, (t[stage] - t["sent"]).total_seconds()), _count(t))  # type: ignore[operator]
            for t in timelines
            if t.get("sent") is not None and t.get(stage) is not None
        ]
        delays = [(d, n) for d, n in delays if n > 0]
        if delays:
            out[stage] = {
                "n": float(sum(n for _, n in delays)),
                "median_s": _percentile(delays, 0.5),
                "p90_s": _percentile(delays, 0.9),
                "worst_s": max(d for d, _ in delays),
            }
    return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def latency_lines(summary: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per stage reached, e.g. ``source sent -> accepted by the provider: median 41 s, ... (n=12)``."""
    words = dict(STAGES)
    return [
        f"source sent -> {words[stage]}: median {_duration(s['median_s'])}, 90% {_duration(s['p90_s'])}, "
        f"worst {_duration(s['worst_s'])} (n={int(s['n'])})"
        for stage, s in summary.items()
    ]
