"""The users aggregate: command-center users, web sessions and login attempts.

The store keeps what it is given: a password *hash* (argon2, made by :mod:`ews.web.auth`), the SHA-256 of a
session token (never the token, so a copy of the database opens no session), and a hash of the user name and
client address for each login attempt (never either in clear). Every method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from ews.errors import StoreError
from ews.store.base import StoreBase
from ews.store.models import LANGUAGES, ROLES, LoginAttempt, UserRow, WebSession


@dataclass(frozen=True)
class UserRecord:
    """One command-center user (see :class:`ews.store.models.UserRow`)."""

    id: int
    username: str
    password_hash: str
    role: str
    regions: tuple[str, ...]
    language: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    """A live web session and its user (see :meth:`UserRepository.session`)."""

    token_hash: str
    csrf_token: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    user: UserRecord


def _user(r: Any) -> UserRecord:
    return UserRecord(
        r["id"], r["username"], r["password_hash"], r["role"], tuple(str(x) for x in r["regions"]), r["language"],
        bool(r["active"]), r["created_at"],
    )  # fmt: skip


def _check_user(username: str, role: str, regions: Sequence[str], language: str) -> None:
    if not username.strip() or len(username) > 64 or username != username.strip():
        raise StoreError(f"user name {username!r}: give 1 to 64 characters without surrounding spaces")
    if role not in ROLES:
        raise StoreError(f"user {username!r}: role {role!r} is not one of {', '.join(ROLES)}")
    if not regions or any(not str(r).strip() for r in regions):
        raise StoreError(f"user {username!r}: give the regions it sees (code prefixes such as 35.78, or * for all)")
    if language not in LANGUAGES:
        raise StoreError(f"user {username!r}: language {language!r} is not one of {', '.join(LANGUAGES)}")


class UserRepository(StoreBase):
    """Users, sessions and login attempts (mixed into :class:`ews.store.repository.Store`)."""

    # -- users ------------------------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password_hash: str,
        role: str,
        regions: Sequence[str],
        language: str = "id",
        *,
        at: datetime,
    ) -> UserRecord:
        """Add a user; returns it with its id.

        Raises
        ------
        StoreError
            The name is taken, or the role, regions or language are not valid (the message says which).
        """
        _check_user(username, role, regions, language)
        if not password_hash.startswith("$argon2"):
            raise StoreError(f"user {username!r}: the password must be stored as an argon2 hash (ews.web.auth)")
        values = {
            "username": username, "password_hash": password_hash, "role": role, "regions": list(regions),
            "language": language, "active": True, "created_at": at,
        }  # fmt: skip
        with self._tx(f"user {username!r}") as connection:
            taken = connection.execute(select(UserRow.id).where(UserRow.username == username)).first()
            if taken is not None:
                raise StoreError(f"user {username!r} exists already (ews users list; ews users passwd to change it)")
            new_id = connection.execute(insert(UserRow).values(values).returning(UserRow.id)).scalar_one()
        return UserRecord(new_id, username, password_hash, role, tuple(regions), language, True, at)

    def user_by_name(self, username: str) -> UserRecord | None:
        """The user called ``username`` (active or not), or None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(UserRow).where(UserRow.username == username)).mappings().first()
        return _user(row) if row is not None else None

    def user_by_id(self, user_id: int) -> UserRecord | None:
        """The user with ``user_id`` (active or not), or None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(UserRow).where(UserRow.id == user_id)).mappings().first()
        return _user(row) if row is not None else None

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self.engine.connect() as connection:
            return [_user(r) for r in connection.execute(select(UserRow).order_by(UserRow.username)).mappings()]

    def set_password(self, username: str, password_hash: str) -> None:
        """Replace a user's password hash and end every session of the user (a changed password logs out).

        Raises
        ------
        StoreError
            No such user, or the hash is not argon2.
        """
        if not password_hash.startswith("$argon2"):
            raise StoreError(f"user {username!r}: the password must be stored as an argon2 hash (ews.web.auth)")
        with self._tx(f"user {username!r}") as connection:
            user_id = connection.execute(select(UserRow.id).where(UserRow.username == username)).scalar_one_or_none()
            if user_id is None:
                raise StoreError(f"there is no user {username!r} (ews users list)")
            connection.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash))
            connection.execute(delete(WebSession).where(WebSession.user_id == user_id))

    def rehash_password(self, user_id: int, password_hash: str) -> None:
        """Store a fresher hash of the same password (argon2 parameters changed); sessions stay open."""
        if not password_hash.startswith("$argon2"):
            raise StoreError(f"user {user_id}: the password must be stored as an argon2 hash (ews.web.auth)")
        with self._statement(f"user {user_id}") as connection:
            connection.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash))

    def deactivate(self, username: str) -> None:
        """Disable a user (kept for the audit log) and end every session of the user.

        Raises
        ------
        StoreError
            No such user.
        """
        with self._tx(f"user {username!r}") as connection:
            user_id = connection.execute(select(UserRow.id).where(UserRow.username == username)).scalar_one_or_none()
            if user_id is None:
                raise StoreError(f"there is no user {username!r} (ews users list)")
            connection.execute(update(UserRow).where(UserRow.id == user_id).values(active=False))
            connection.execute(delete(WebSession).where(WebSession.user_id == user_id))

    # -- sessions ---------------------------------------------------------------------------------------

    def create_session(self, user_id: int, token_hash: str, csrf: str, expires_at: datetime, at: datetime) -> None:
        """Open a session: ``token_hash`` is the SHA-256 (hex) of the token the client holds."""
        if len(token_hash) != 64 or not csrf:
            raise StoreError("a session needs the SHA-256 (64 hex digits) of its token and a CSRF token")
        if expires_at <= at:
            raise StoreError(f"a session must expire after it opens ({expires_at.isoformat()} <= {at.isoformat()})")
        values = {
            "token_hash": token_hash, "user_id": user_id, "csrf_token": csrf, "created_at": at, "last_seen": at,
            "expires_at": expires_at,
        }  # fmt: skip
        with self._statement("web session") as connection:
            connection.execute(insert(WebSession).values(values))

    def session(self, token_hash: str, at: datetime, *, idle: timedelta | None = None) -> SessionRecord | None:
        """The live session with ``token_hash`` at ``at``, its ``last_seen`` moved to ``at``; None if there is none.

        A session is refused (None) when it expired, was idle longer than ``idle``, or its user is disabled.
        """
        s = WebSession
        with self._tx("web session") as connection:
            ses = connection.execute(select(s).where(s.token_hash == token_hash)).mappings().first()
            if ses is None or at >= ses["expires_at"] or (idle is not None and at - ses["last_seen"] > idle):
                return None
            user = connection.execute(select(UserRow).where(UserRow.id == ses["user_id"])).mappings().first()
            if user is None or not user["active"]:
                return None
            connection.execute(update(s).where(s.token_hash == token_hash).values(last_seen=at))
        return SessionRecord(token_hash, ses["csrf_token"], ses["created_at"], at, ses["expires_at"], _user(user))

    def delete_session(self, token_hash: str) -> None:
        """End one session (logout); ending one that does not exist is not an error."""
        with self._statement("web session") as connection:
            connection.execute(delete(WebSession).where(WebSession.token_hash == token_hash))

    def delete_sessions_of(self, user_id: int) -> int:
        """End every session of a user; returns how many there were."""
        with self._statement("web sessions") as connection:
            return int(connection.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount)

    def delete_expired_sessions(self, at: datetime) -> int:
        """Drop the sessions expired at ``at`` (housekeeping); returns how many."""
        with self._statement("web sessions") as connection:
            return int(connection.execute(delete(WebSession).where(WebSession.expires_at <= at)).rowcount)

    # -- login attempts ---------------------------------------------------------------------------------

    def record_login_attempt(self, key: str, ok: bool, at: datetime) -> None:
        """Remember one login attempt under ``key`` (a hash of the user name and address, never either)."""
        with self._statement("login attempt") as connection:
            connection.execute(insert(LoginAttempt).values(key=key, ok=ok, at=at))

    def failures_since(self, key: str, since: datetime) -> list[datetime]:
        """When the failed attempts under ``key`` after ``since`` and after its last success were made, oldest first.

        A success clears the count: the limit is on guesses, not on people who mistype once a day.
        """
        a = LoginAttempt
        last_ok = select(func.max(a.at)).where(a.key == key, a.ok.is_(True), a.at > since)
        with self.engine.connect() as connection:
            cleared = connection.execute(last_ok).scalar_one_or_none()
            stmt = select(a.at).where(a.key == key, a.ok.is_(False), a.at > since)
            if cleared is not None:
                stmt = stmt.where(a.at > cleared)
            return list(connection.execute(stmt.order_by(a.at)).scalars())
