"""``ews users``: the password comes from stdin or a prompt, never an argument; every change is audited."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ews.cli import main
from ews.store.repository import Store
from ews.web.auth import verify_password


def test_add_list_passwd_disable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert main(["users", "add", "ana", "--role", "analyst", "--regions", "35.78,35.15", "--language", "en",
                 "--password-stdin", "--database", db]) == 0  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert main(["users", "add", "ana", "--role", "viewer", "--regions", "*", "--password-stdin",
                 "--database", db]) == 2  # fmt: skip
    assert "exists already" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "passwd", "ana", "--password-stdin", "--database", db]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password-2\n"))
    assert main(["users", "passwd", "ana", "--password-stdin", "--database", db]) == 0
    assert main(["users", "disable", "ana", "--database", db]) == 0
    capsys.readouterr()
    assert main(["users", "list", "--database", db]) == 0
    assert capsys.readouterr().out == "ana\tanalyst\t35.78,35.15\ten\tdisabled\n"
    with pytest.raises(SystemExit):
        main(["users", "add", "bob", "--role", "viewer", "--regions", "35", "--password", "x", "--database", db])
    store = Store.from_url(db)
    try:
        user = store.user_by_name("ana")
        assert user is not None
        assert verify_password(user.password_hash, "another-password-2")
        assert [e.action for e in store.audit_entries()] == ["user.disable", "user.passwd", "user.add"]
        assert "password" not in str([e.detail for e in store.audit_entries()])
    finally:
        store.close()


def test_a_typed_password_must_be_typed_twice_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["a-long-password-1", "a-long-password-2"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    assert main(["users", "add", "ana", "--role", "analyst", "--regions", "35.78", "--database", db]) == 2
    store = Store.from_url(db)
    try:
        assert store.users() == []
    finally:
        store.close()
