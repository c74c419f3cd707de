"""The audit log: entries added in sets, read newest first, scoped to regions on a dot boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ews.errors import StoreError
from ews.store.audit import AuditItem
from ews.store.mobilisations import _matches
from ews.store.repository import Store

T = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def test_entries_are_read_newest_first_and_scoped_by_whole_code_parts(store: Store) -> None:
    store.record_audit("sari", "operator", "report status", "report:1", region="35.78", detail={"to": "routed"}, at=T)
    store.record_audit_many(
        [AuditItem("ews", "system", "mobilisation opened", "mobilisation:1", "35.7"),
         AuditItem("ews", "system", "run", "run:1", None)],
        at=T + timedelta(minutes=1),
    )  # fmt: skip
    assert [e.subject for e in store.audit_entries()] == ["run:1", "mobilisation:1", "report:1"]
    assert store.audit_entries(subject="report:1")[0].detail == {"to": "routed"}
    # 35.7 is not a prefix of 35.78 on a code boundary: each region sees its own (and entries of no region).
    assert {e.subject for e in store.audit_entries(regions=["35.78"])} == {"report:1", "run:1"}
    assert {e.subject for e in store.audit_entries(regions=["35.7"])} == {"mobilisation:1", "run:1"}
    assert {e.subject for e in store.audit_entries(regions=["35"])} == {"report:1", "mobilisation:1", "run:1"}


def test_an_entry_without_actor_action_or_subject_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="needs an actor, an action and a subject"):
        store.record_audit("", "operator", "x", "report:1", at=T)
    assert store.audit_entries() == []


def test_mobilisations_are_scoped_by_whole_code_parts() -> None:
    assert _matches("demo", ["35.99.01.2001"], ["35.99"])
    assert _matches("demo", ["35.99.01.2001"], ["demo"])
    assert not _matches("demo", ["35.99.01.2001"], ["35.9"])
    assert _matches("demo", ["35.99.01.2001"], None)
