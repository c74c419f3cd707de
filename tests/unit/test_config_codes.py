"""Region files and Kemendagri codes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ews.codes import code_level, is_kelurahan, local_zone, normalize_code, parent_code
from ews.config import open_region
from ews.errors import ConfigError, DataValidationError
from ews.types import Level

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("35.78.01.1001", "35.78.01.1001"),
        ("3578011001", "35.78.01.1001"),
        (" 35.78.01 ", "35.78.01"),
        (35, "35"),
        (35.01, "35.01"),
        (35.1, "35.10"),  # level-2 GeoJSON stores 35.10 as the number 35.1
        (35.2, "35.20"),
        (35.78, "35.78"),
        ("35.1", "35.10"),
        ("357801", "35.78.01"),
    ],
)
def test_normalize_code(raw: object, code: str) -> None:
    assert normalize_code(raw) == code


@pytest.mark.parametrize("raw", ["", "abc", "35.7.8", "12345", None, True, float("nan")])
def test_bad_codes(raw: object) -> None:
    with pytest.raises(ValueError, match="Kemendagri code"):
        normalize_code(raw)


def test_parents_and_kind() -> None:
    code = "35.78.01.1001"
    assert [parent_code(code, n) for n in (1, 2, 3, 4)] == ["35", "35.78", "35.78.01", code]
    assert code_level(code) == 4
    assert is_kelurahan(code)
    assert not is_kelurahan("35.01.01.2001")
    with pytest.raises(ValueError, match="no level-4 parent"):
        parent_code("35.78", 4)


@pytest.mark.parametrize(("code", "zone", "hours"), [("35.78", "WIB", 7), ("75.04", "WITA", 8), ("94.01", "WIT", 9)])
def test_zones(code: str, zone: str, hours: int) -> None:
    tz, name = local_zone(code)
    assert name == zone
    assert tz.utcoffset(None) == timedelta(hours=hours)


def test_unknown_province_zone() -> None:
    with pytest.raises(DataValidationError, match="province code 99"):
        local_zone("99.01")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "region.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = 'id: t\nname: T\nprovince_code: "35"\nboundaries: {path: v.geojson}\n'


def test_every_shipped_region_loads(tmp_path: Path) -> None:
    files = sorted((REPO / "regions").glob("*.yaml"))
    assert files, "regions/ has no region file"
    for file in files:
        config = open_region(file, {"EWS_SHARED_DATA": str(tmp_path)})
        assert config.id == file.stem
        assert str(config.boundaries.path).startswith(str(tmp_path))


def test_typo_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "levles: {min_fraction: 0.1}\n")
    with pytest.raises(ConfigError, match=r"region.yaml: unknown key 'levles'"):
        open_region(path)


def test_nested_typo_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("{path: v.geojson}", "{path: v.geojson, id_feild: kode}"))
    with pytest.raises(ConfigError, match=r"unknown key 'boundaries.id_feild'"):
        open_region(path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("levels: {min_fraction: 1.5}\n", "levels.min_fraction"),
        ("levels: {min_fraction: 0.6, partial_fraction: 0.3}\n", "min_fraction <= partial_fraction"),
        ("levels: {tagana_min_level: Merah}\n", "unknown level 'Merah'"),
        ("population: {method: csv}\n", "needs 'path'"),
    ],
)
def test_invalid_values_are_named(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_region(write(tmp_path, MINIMAL + extra))


def test_paths_relative_to_the_file_and_env(tmp_path: Path) -> None:
    config = open_region(write(tmp_path, MINIMAL + "subscribers: ${SUBS}/s.csv\n"), {"SUBS": "/data"})
    assert config.boundaries.path == tmp_path / "v.geojson"
    assert config.subscribers == Path("/data/s.csv")
    assert config.levels.severity["Severe"] is Level.SIAGA
    with pytest.raises(ConfigError, match="environment variable SUBS is not set"):
        open_region(write(tmp_path, MINIMAL + "subscribers: ${SUBS}/s.csv\n"), {})


def test_region_is_frozen(tmp_path: Path) -> None:
    config = open_region(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError, match="frozen"):
        config.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("text", "message"), [("- a\n- b\n", "must be a YAML mapping"), ("a: [\n", "not valid YAML")])
def test_not_a_region(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_region(write(tmp_path, text))


def test_missing_region_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read region file"):
        open_region(tmp_path / "nope.yaml")
