"""tagana.csv's optional step and role columns, and the region file's mobilisation: block."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ews.config import MobilisationRules
from ews.errors import DataValidationError
from ews.ingest.contacts import read_tagana

HEADER = "unit_id,name,kabkota_code,kecamatan_codes,coordinator,phone,channel"


def test_step_and_role_are_optional_and_read(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_text(f"{HEADER}\nTGN-1,Pos,35.78,,Budi,+62899900009001,sms\n", encoding="utf-8")
    [unit] = read_tagana(old)
    assert (unit.step, unit.role) == (1, "coordinator")
    new = tmp_path / "new.csv"
    new.write_text(f"{HEADER},step,role\nTGN-1,Pos,35.78,,Piket,+62899900009002,sms,3,bpbd\n", encoding="utf-8")
    [unit] = read_tagana(new)
    assert (unit.step, unit.role) == (3, "bpbd")


def test_bad_step_and_role_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER},step,role\nTGN-1,Pos,35.78,,Budi,,sms,0,lurah\nTGN-1,Pos,35.78,,Ani,,sms,x,\n")
    with pytest.raises(DataValidationError, match=r"2 bad lines") as caught:
        read_tagana(path)
    text = str(caught.value)
    assert "line 2: column 'step' is '0'" in text
    assert "column 'role' is 'lurah'; use coordinator or bpbd" in text
    assert "line 3: column 'step' is 'x'" in text


def test_mobilisation_block_defaults_and_unit_overrides() -> None:
    rules = MobilisationRules.model_validate({"quorum": 2, "units": {"TGN-1": {"repeat": 0}}})
    default = rules.policy_for("TGN-9")
    assert [s.delay for s in default.steps] == [timedelta(0), timedelta(minutes=10), timedelta(minutes=20)]
    assert (default.quorum, default.repeat, default.ack_timeout) == (2, 1, timedelta(minutes=60))
    own = rules.policy_for("TGN-1")
    assert (own.quorum, own.repeat) == (2, 0)  # the region's quorum, its own repeat
    with pytest.raises(ValueError, match="order of their delay"):
        MobilisationRules.model_validate(
            {"steps": [{"targets": 1, "delay_minutes": 9}, {"targets": 2, "delay_minutes": 1}]}
        )
