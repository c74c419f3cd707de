"""Shared tools of the hostile-input suite: run ``ews`` in-process, look for leaked numbers, a small region.

Every test here feeds ews an input as a careless user or an attacker would, then checks the same things:
the exit code, one line naming the file/field/record, nothing half-written, no full phone number in
stdout, stderr or the log, and that the other inputs of the same run were still published.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ews.cli import main

REPO = Path(__file__).resolve().parents[2]
# An Indonesian mobile number in any written form (also with separators): 08…, 62 8…, +62 (8…); not decimals
# such as "0.86 927.88" (a leading 0 is written right before the 8, and 62 is never followed by a dot).
FULL_NUMBER = re.compile(r"(?<![\d.])(?:\(?\+?62\)?[\s\-()]*|\(?0)8(?:[\s\-.()]*\d){7,11}(?![\d.])")
SURABAYA_BOX = "-7.345,112.670 -7.345,112.700 -7.325,112.700 -7.325,112.670 -7.345,112.670"


@dataclass(frozen=True)
class CliResult:
    """What one ``ews`` command did: its exit code, what it printed and what it logged."""

    code: int
    out: str
    err: str
    log: str

    @property
    def text(self) -> str:
        return "\n".join((self.out, self.err, self.log))

    def line_with(self, *needles: str) -> str:
        """The one line of stderr or stdout that names every needle (fails listing what was printed)."""
        for line in (*self.err.splitlines(), *self.out.splitlines()):
            if all(n in line for n in needles):
                return line
        raise AssertionError(f"no line names {needles!r}; stderr:\n{self.err}\nstdout:\n{self.out}")


def assert_no_phone(*texts: str) -> None:
    """No full Indonesian phone number in any of the texts (masked ``+62812*****890`` is fine)."""
    for text in texts:
        found = FULL_NUMBER.search(text)
        assert found is None, f"full phone number {found.group(0)!r} in output"


def assert_no_traceback(result: CliResult) -> None:
    assert "Traceback (most recent call last)" not in result.text, result.err


@pytest.fixture
def ews_cli(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[..., CliResult]:
    """``ews_cli(*argv)`` runs the ``ews`` command in this process and returns a :class:`CliResult`."""

    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            code = main([str(a) for a in argv])
        printed = capsys.readouterr()
        result = CliResult(code, printed.out, printed.err, caplog.text)
        assert_no_traceback(result)
        assert_no_phone(result.out, result.err, result.log)
        return result

    return run


def surabaya_kelurahan(shared_data: Path) -> Path:
    """The 152 real kelurahan of Kota Surabaya (GeoJSON, lon/lat, no crs member)."""
    return shared_data / "boundaries/wilayah_boundaries_geojson/kel/35/wilayah_boundaries_kel_35.78.geojson"


def write_region(
    folder: Path,
    shared_data: Path,
    *,
    extra: str = "",
    boundaries: Path | None = None,
    subscribers: Sequence[Sequence[str]] | None = None,
    tagana: Sequence[Sequence[str]] | None = None,
) -> Path:
    """A Jawa Timur region on the 152 real kelurahan of Kota Surabaya (fast), with optional contact files.

    ``subscribers``/``tagana`` rows are written under the region's CSV headers as given (fictional numbers
    only: ews reserves +62 8999 00xx xxxx).
    """
    folder.mkdir(parents=True, exist_ok=True)
    kel = surabaya_kelurahan(shared_data)
    codes = shared_data / "wilayah_codes"
    lines = [
        "id: jawa-timur",
        "name: Jawa Timur",
        'province_code: "35"',
        f"boundaries: {{path: {boundaries or kel}, id_field: kode, name_field: nama}}",
        f"population: {{method: kabkota_area_share, path: {codes / 'cahyadsn_wilayah_penduduk_prov_kab_2025.csv'}, "
        "id_field: kode, value_field: total}",
        f"area_names: [{codes / 'idn-area-data_districts.csv'}, {codes / 'idn-area-data_regencies.csv'}]",
    ]
    if subscribers is not None:
        path = folder / "subscribers.csv"
        rows = ["phone,village_code,language,channel,consent_source,consent_time", *(",".join(r) for r in subscribers)]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        lines.append(f"subscribers: {path}")
    if tagana is not None:
        path = folder / "tagana.csv"
        rows = ["unit_id,name,kabkota_code,kecamatan_codes,coordinator,phone,channel", *(",".join(r) for r in tagana)]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        lines.append(f"tagana: {path}")
    region = folder / "jawa-timur.yaml"
    region.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return region
