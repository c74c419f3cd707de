"""What YAML a region file may use: no aliases, bounded size and nesting; the fetch options."""

from __future__ import annotations

from pathlib import Path

import pytest

from ews.config import MAX_REGION_BYTES, open_region
from ews.errors import ConfigError
from ews.synthetic import write_synthetic_region

REPO = Path(__file__).resolve().parents[2]
MINIMAL = 'id: t\nname: T\nprovince_code: "35"\nboundaries: {path: v.geojson}\n'


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "region.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_shipped_and_demo_regions_still_load(tmp_path: Path) -> None:
    for file in sorted((REPO / "regions").glob("*.yaml")):
        assert open_region(file, {"EWS_SHARED_DATA": str(tmp_path)}).id == file.stem
    demo = open_region(write_synthetic_region(tmp_path / "demo"))
    assert demo.fetch.allowed_redirect_hosts == ()


def test_an_anchor_alone_is_harmless(tmp_path: Path) -> None:
    assert open_region(write(tmp_path, MINIMAL.replace("name: T", "name: &n T"))).name == "T"


@pytest.mark.parametrize(
    ("extra", "line", "alias"),
    [
        ("levels: &l {min_fraction: 0.1}\nalerts: *l\n", 6, "l"),
        ("levels: &l {min_fraction: 0.1}\nalerts:\n  <<: *l\n", 7, "l"),  # a merge key is an alias too
        ("messages: {languages: &x [id], channels: [sms]}\narea_names: *x\n", 6, "x"),
    ],
)
def test_an_alias_is_refused_naming_file_and_line(tmp_path: Path, extra: str, line: int, alias: str) -> None:
    path = write(tmp_path, MINIMAL + extra)
    message = rf"region file {path} line {line}: YAML aliases \(\*{alias}\) are not allowed in region files; write the"
    with pytest.raises(ConfigError, match=message):
        open_region(path)


def test_deep_nesting_is_refused_before_python_recurses(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "area_names: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match=rf"region file {path} line 5: values nested more than 32 levels deep"):
        open_region(path)


def test_size_and_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "#" * MAX_REGION_BYTES + "\n")
    with pytest.raises(ConfigError, match=rf"region file {path}: larger than 1,048,576 bytes"):
        open_region(path)
    path = write(tmp_path, MINIMAL.encode().replace(b"name: T", b"name: \xff"))
    with pytest.raises(ConfigError, match=rf"region file {path}: not UTF-8 text .* save it as UTF-8"):
        open_region(path)


def test_allowed_redirect_hosts(tmp_path: Path) -> None:
    config = open_region(write(tmp_path, MINIMAL + "fetch: {allowed_redirect_hosts: [mirror.example.org, h:8080]}\n"))
    assert config.fetch.allowed_redirect_hosts == ("mirror.example.org", "h:8080")
    with pytest.raises(ConfigError, match=r"key 'fetch\.allowed_redirect_hosts\.0'"):
        open_region(write(tmp_path, MINIMAL + "fetch: {allowed_redirect_hosts: ['https://mirror/']}\n"))
    with pytest.raises(ConfigError, match=r"unknown key 'fetch\.allowed_hosts'"):
        open_region(write(tmp_path, MINIMAL + "fetch: {allowed_hosts: [x]}\n"))
