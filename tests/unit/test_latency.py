"""Per-stage latency from a source's <sent> to a phone (ews.latency)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ews.latency import latency_lines, summarise

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def timeline(seen: float, accepted: float | None, delivered: float | None = None) -> dict[str, datetime | None]:
    def at(s: float | None) -> datetime | None:
        return None if s is None else T0 + timedelta(seconds=s)

    return {"sent": T0, "seen": at(seen), "decided": at(seen + 1), "queued": at(seen + 1), "handed": at(seen + 2),
            "accepted": at(accepted), "delivered": at(delivered)}  # fmt: skip


def test_median_90th_and_worst_by_nearest_rank() -> None:
    rows = [timeline(10, 10 + i) for i in range(1, 11)]  # accepted 11..20 s after <sent>
    s = summarise(rows)
    assert s["accepted"] == {"n": 10.0, "median_s": 15.0, "p90_s": 19.0, "worst_s": 20.0}
    assert s["seen"]["worst_s"] == 10.0
    assert "delivered" not in s  # nobody reported delivered yet: no figure, rather than a wrong one


def test_a_source_from_the_future_counts_as_no_delay() -> None:
    rows = [{"sent": T0 + timedelta(minutes=5), "seen": T0, "accepted": T0 + timedelta(minutes=6)}]
    s = summarise(rows)  # type: ignore[arg-type]
    assert s["seen"]["median_s"] == 0.0
    assert s["accepted"]["median_s"] == 60.0


def test_lines_name_each_stage_in_words() -> None:
    lines = latency_lines(summarise([timeline(30, 45, 200), timeline(30, 50, 7300)]))
    assert lines[0] == "source sent -> first seen by ews: median 30 s, 90% 30 s, worst 30 s (n=2)"
    assert "source sent -> accepted by the provider: median 45 s, 90% 50 s, worst 50 s (n=2)" in lines
    assert lines[-1] == "source sent -> reported delivered: median 3.3 min, 90% 2.0 h, worst 2.0 h (n=2)"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 5)), min_size=1, max_size=30))
def test_timelines_with_counts_give_the_figures_of_the_messages_repeated(pairs: list[tuple[int, int]]) -> None:
    grouped = [{**timeline(5, 5 + d), "count": n} for d, n in pairs]
    expanded = [timeline(5, 5 + d) for d, n in pairs for _ in range(n)]
    assert summarise(grouped) == summarise(expanded)  # type: ignore[arg-type]
