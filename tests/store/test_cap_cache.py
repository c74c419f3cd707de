"""The CAP polygon text cache: once per outline, across processes, never stale, never a reason to fail."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from shapely.geometry import box

from ews.cap.writer import polygon_rings
from ews.store import cap_cache
from ews.store.cap_cache import cached_polygon_texts

SQUARES = [box(112.70, -7.31, 112.71, -7.30), box(112.71, -7.31, 112.72, -7.30)]


@pytest.fixture(autouse=True)
def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cap_cache, "_MEMORY", {})


def texts(cache: Path | None, geometries: Sequence[object], computed: list[int]) -> list[tuple[str, ...]]:
    def compute(i: int) -> list[str]:
        computed.append(i)
        return polygon_rings(geometries[i])  # type: ignore[arg-type]

    return cached_polygon_texts(cache, geometries, compute)  # type: ignore[arg-type]


def test_texts_are_computed_once_and_read_back_by_a_new_process(tmp_path: Path) -> None:
    computed: list[int] = []
    first = texts(tmp_path, SQUARES, computed)
    assert first == [tuple(polygon_rings(g)) for g in SQUARES]
    assert computed == [0, 1]
    cap_cache._MEMORY.clear()
    assert texts(tmp_path, SQUARES, computed) == first
    assert computed == [0, 1]


def test_an_edited_outline_is_computed_anew(tmp_path: Path) -> None:
    computed: list[int] = []
    texts(tmp_path, SQUARES, computed)
    moved = [SQUARES[0], box(112.71, -7.31, 112.725, -7.30)]  # the second village's boundary changed
    assert texts(tmp_path, moved, computed)[1] == tuple(polygon_rings(moved[1]))
    assert computed == [0, 1, 1]


def test_a_damaged_cache_file_is_replaced_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    computed: list[int] = []
    texts(tmp_path, SQUARES, computed)
    (path,) = tmp_path.glob("cap-polygons-v*.sqlite")
    for extra in tmp_path.glob("cap-polygons-v*.sqlite-*"):
        extra.unlink()
    path.write_bytes(b"not a database" * 100)
    cap_cache._MEMORY.clear()
    with caplog.at_level(logging.WARNING, "ews.store.cap_cache"):
        assert texts(tmp_path, SQUARES, computed) == [tuple(polygon_rings(g)) for g in SQUARES]
    assert "not a readable SQLite file" in caplog.text
    cap_cache._MEMORY.clear()
    texts(tmp_path, SQUARES, computed)
    assert computed == [0, 1, 0, 1]  # rebuilt, then read back


def test_without_a_folder_texts_stay_in_memory(tmp_path: Path) -> None:
    computed: list[int] = []
    texts(None, SQUARES, computed)
    texts(None, SQUARES[::-1], computed)
    assert computed == [0, 1]
    assert list(tmp_path.iterdir()) == []
