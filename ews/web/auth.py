"""Who may do what in the command center: users, sessions, CSRF, roles, region scope, masked phones, audit.

One authorisation path for pages and the JSON API alike:

- :func:`current_user` reads the session from the ``Authorization: Bearer <token>`` header (API clients such as
  other agencies, who get the token from ``POST /api/session``) or else from the session cookie. Without a live
  session a page redirects to ``/login`` (303) and an API path gets 401.
- :func:`require` ``(role)`` adds the role check (403 below it) and, for every state-changing method, the CSRF
  check of :func:`csrf_protect`: every state change sits behind one dependency.
- A cookie session must send its CSRF token with every state change (form field ``csrf_token`` or header
  ``X-CSRF-Token``); a bearer token is exempt, as a browser never sends it by itself.
- Roles are ordered (:data:`ROLES`); a user sees only the villages under its region prefixes (:meth:`User.sees`).

Session tokens and CSRF tokens are 256-bit random strings; the store keeps the SHA-256 of a session token,
never the token. Passwords are hashed with argon2id (:func:`hash_password`). Nothing here logs a password, a
token or a client address in clear.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import phonenumbers
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request
from starlette.status import HTTP_303_SEE_OTHER

from ews.errors import ConfigError
from ews.store.repository import Store
from ews.store.users import SessionRecord, UserRecord

log = logging.getLogger(__name__)

ROLES = ("viewer", "operator", "analyst", "admin")
"""The roles, each allowed what the ones before it are."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_MIN_SECRET = 32  # characters of EWS_SECRET_KEY: 256 bits as hex or base64 text is at least this long


@dataclass(frozen=True)
class User:
    """The logged-in user of a request, as the pages and the API see it (no password hash)."""

    id: int
    username: str
    role: str
    regions: tuple[str, ...]  # code prefixes ("35.78", "35") or region ids ("jawa-timur"); ("*",) sees all
    language: str

    @classmethod
    def from_record(cls, record: UserRecord) -> User:
        """The user of a stored record."""
        return cls(record.id, record.username, record.role, record.regions, record.language)

    def at_least(self, role: str) -> bool:
        """Whether this user's role is ``role`` or above (``ValueError`` for an unknown role)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        return ROLES.index(self.role) >= ROLES.index(role)

    def sees(self, code: str | None) -> bool:
        """Whether ``code`` (a village, kecamatan, kab/kota or province code, or a region id) is in scope.

        A prefix covers the codes below it on a dot boundary: ``35`` sees ``35.78`` and ``35.78.01.1001``,
        not ``351``. Something without a region (None) is seen only by users of every region (``*``).
        """
        if "*" in self.regions:
            return True
        if not code:
            return False
        return any(code == p or code.startswith(p + ".") for p in self.regions)

    @property
    def every_region(self) -> bool:
        """Whether this user sees every region."""
        return "*" in self.regions


# -- passwords ----------------------------------------------------------------------------------------------

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters (RFC 9106)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (with its salt and parameters), for :meth:`Store.create_user`."""
    if not password:
        raise ValueError("a password cannot be empty")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; False (never an exception) for any mismatch or bad hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a hash was made with other parameters than today's (then store a new one after a login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def verify_nobody(password: str) -> bool:
    """False, as slowly as :func:`verify_password`: for a user that does not exist (no probing names by timing)."""
    verify_password(_dummy_hash(), password)
    return False


# -- settings -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebSettings:
    """The command center's web settings, read once at startup (:meth:`from_env`).

    ``secret_key`` signs the login form's CSRF token, keys the login-attempt hashes and signs links such as
    Tagana acknowledgement links; with a generated key (``secret_generated``) these do not survive a restart.
    """

    secret_key: bytes
    session_ttl: timedelta = timedelta(hours=8)  # a session ends this long after login, used or not
    session_idle: timedelta = timedelta(minutes=30)  # ... or after this long unused
    secure_cookies: bool = True  # False only for plain http on 127.0.0.1 (ews serve --insecure-cookies)
    login_max_failures: int = 5  # failed logins per user name and client address ...
    login_window: timedelta = timedelta(minutes=15)  # ... within this window, then 429 until one ages out
    secret_generated: bool = False

    def __post_init__(self) -> None:
        if len(self.secret_key) < _MIN_SECRET:
            raise ConfigError(
                f"EWS_SECRET_KEY must be at least {_MIN_SECRET} characters (e.g. `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`)"
            )
        if self.login_max_failures < 1:
            raise ConfigError("login_max_failures must be at least 1")

    @property
    def cookie_name(self) -> str:
        """The session cookie: ``__Host-`` prefixed (Secure, Path=/, no Domain) unless cookies are insecure."""
        return "__Host-ews_session" if self.secure_cookies else "ews_session"

    @property
    def login_cookie_name(self) -> str:
        """The login form's pre-session cookie (the double-submit half of its CSRF token)."""
        return "__Host-ews_login" if self.secure_cookies else "ews_login"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, secure_cookies: bool = True) -> WebSettings:
        """Settings from ``EWS_SECRET_KEY`` (at least 32 characters, e.g. 64 hex digits).

        Without ``EWS_SECRET_KEY`` a random key is generated and a warning logged: signed links and the login
        rate limit then start afresh at every restart.

        Raises
        ------
        ConfigError
            ``EWS_SECRET_KEY`` is set but shorter than 32 characters.
        """
        source = os.environ if env is None else env
        text = source.get("EWS_SECRET_KEY", "")
        if text:
            return cls(text.encode("utf-8"), secure_cookies=secure_cookies)
        log.warning(
            "EWS_SECRET_KEY is not set: generated a random key for this process. Signed links (Tagana "
            "acknowledgements) and login rate limits will NOT survive a restart; set EWS_SECRET_KEY to 64 hex digits"
        )
        return cls(
            secrets.token_hex(32).encode("ascii"),
            secure_cookies=secure_cookies,
            secret_generated=True,
        )

    def sign(self, purpose: str, value: str) -> str:
        """An HMAC-SHA256 (hex) of ``value`` for ``purpose`` (``"login"``, ``"ack"``...) with the secret key."""
        return hmac.new(self.secret_key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    def verify(self, purpose: str, value: str, signature: str) -> bool:
        """Whether ``signature`` is :meth:`sign` of ``value`` for ``purpose`` (constant time)."""
        return hmac.compare_digest(self.sign(purpose, value), signature)


# -- the request's context ----------------------------------------------------------------------------------


def store_of(request: Request) -> Store:
    """The app's store (set by :func:`ews.web.app.create_app`)."""
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> WebSettings:
    """The app's :class:`WebSettings`."""
    settings: WebSettings = request.app.state.settings
    return settings


def now_of(request: Request) -> datetime:
    """The app clock's "now" (tests inject a clock)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a session token: what the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh 256-bit random token (session or CSRF)."""
    return secrets.token_urlsafe(32)


def _is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def _refuse_anonymous(request: Request) -> HTTPException:
    if _is_api(request):
        return HTTPException(401, "log in first: POST /api/session, then send Authorization: Bearer <token>",
                             headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(HTTP_303_SEE_OTHER, "log in first", headers={"Location": f"/login?next={quote(target)}"})


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def current_user(request: Request) -> User:
    """FastAPI dependency: the user of the request's session (see the module docstring).

    Raises
    ------
    HTTPException
        303 to ``/login`` for a page, 401 for an API path, when there is no live session.
    """
    cached = getattr(request.state, "user", None)
    if isinstance(cached, User):
        return cached
    settings = settings_of(request)
    bearer = _bearer(request)
    token = bearer if bearer is not None else request.cookies.get(settings.cookie_name)
    if not token or len(token) > 256:
        raise _refuse_anonymous(request)
    found = store_of(request).session(token_hash(token), now_of(request), idle=settings.session_idle)
    if found is None:
        raise _refuse_anonymous(request)
    user = User.from_record(found.user)
    request.state.user = user
    request.state.session = found
    request.state.auth_via = "bearer" if bearer is not None else "cookie"
    return user


async def optional_user(request: Request) -> User | None:
    """FastAPI dependency: the session's user, or None without one (the login page)."""
    try:
        return await current_user(request)
    except HTTPException:
        return None


def session_of(request: Request) -> SessionRecord | None:
    """The request's session, once :func:`current_user` has run."""
    found = getattr(request.state, "session", None)
    return found if isinstance(found, SessionRecord) else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token, for a template's hidden ``csrf_token`` input or htmx's ``hx-headers``.

    Empty for a request without a session (there is nothing to protect; the login form has its own token).
    """
    found = session_of(request)
    return found.csrf_token if found is not None else ""


async def _sent_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.form()).get(CSRF_FIELD)  # Starlette caches the parsed form for the endpoint
        return value if isinstance(value, str) else ""
    return ""


async def csrf_protect(request: Request, user: Annotated[User, Depends(current_user)]) -> None:
    """FastAPI dependency: refuse (403) a state-changing cookie-session request without its session's CSRF token.

    Safe methods (GET, HEAD, OPTIONS) and bearer-token requests pass: neither carries ambient credentials
    into a state change.
    """
    if request.method in SAFE_METHODS or getattr(request.state, "auth_via", "") == "bearer":
        return
    found = session_of(request)
    sent = await _sent_csrf(request)
    if found is None or not sent or not hmac.compare_digest(sent.encode(), found.csrf_token.encode()):
        log.warning("refused %s %s by %s: missing or wrong CSRF token", request.method, request.url.path, user.username)
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def require(role: str) -> Callable[..., Awaitable[User]]:
    """A FastAPI dependency: the current user if its role is ``role`` or above (403 otherwise).

    For a state-changing method it also applies :func:`csrf_protect`, so one dependency guards a change.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")

    async def dependency(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
        if not user.at_least(role):
            raise HTTPException(403, f"this needs the {role} role or above (you are {user.role})")
        await csrf_protect(request, user)
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


# -- audit, phones ------------------------------------------------------------------------------------------


def audit(
    request_or_store: Request | Store,
    user: User | None,
    action: str,
    subject: str,
    region: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Write one audit entry: ``user`` (None: the system, ``ews``) did ``action`` on ``subject``.

    With a request the app's clock stamps it; never put a phone number, password or address in ``detail``.
    """
    if isinstance(request_or_store, Request):
        store, at = store_of(request_or_store), now_of(request_or_store)
    else:
        store, at = request_or_store, None
    actor, role = (user.username, user.role) if user is not None else ("ews", "system")
    store.record_audit(actor, role, action, subject, region=region, detail=detail, at=at)


_DOTS = "•••"
_MASK = "••• ••••"


def mask_phone(e164: str) -> str:
    """A phone number as the dashboard shows it: country code and the last digits only (``+62 ••• •••• 1234``).

    Four digits are kept of a national number of nine or more, three of a shorter one; something that is not
    a phone number shows as dots alone.
    """
    raw = e164.removeprefix("whatsapp:").strip()
    try:
        parsed = phonenumbers.parse(raw if raw.startswith("+") else f"+{raw}", None)
    except phonenumbers.NumberParseException:
        return _DOTS
    national = str(parsed.national_number)
    if len(national) < 6:
        return _DOTS
    keep = 4 if len(national) >= 9 else 3
    return f"+{parsed.country_code} {_MASK} {national[-keep:]}"


def phone_for(user: User, e164: str | None) -> str | None:
    """What ``user`` may see of a phone number: masked for operators and above, nothing for viewers."""
    if e164 is None or not user.at_least("operator"):
        return None
    return mask_phone(e164)
