"""Logging in and out: the login form, its logout, and API sessions (``POST``/``DELETE /api/session``).

Both ways in share :func:`log_in`: at most :attr:`~ews.web.auth.WebSettings.login_max_failures` failed attempts
per user name and client address in :attr:`~ews.web.auth.WebSettings.login_window` (then 429 with
``Retry-After``, the password not even checked), a wrong name as slow as a wrong password, and an audit entry
for every success and failure (with neither the password nor the address: a keyed hash of the address).

The login form has no session yet to hold its CSRF token, so it uses a signed double-submit token: ``GET /login``
sets a random nonce in a ``SameSite=Strict`` cookie and puts the nonce's HMAC (with the secret key) in the form;
``POST /login`` checks one against the other. A cross-site page can neither read the cookie nor forge the HMAC.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from ews.web.auth import (
    User,
    WebSettings,
    audit,
    csrf_protect,
    current_user,
    hash_password,
    needs_rehash,
    new_token,
    now_of,
    session_of,
    settings_of,
    store_of,
    token_hash,
    verify_nobody,
    verify_password,
)

log = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

auth_router = APIRouter(tags=["session"])

FORM_EXPIRED = "Formulir kedaluwarsa, silakan coba lagi. / The form expired, please try again."


class LoginRefusedError(Exception):
    """A refused login: the HTTP status, a message for the person, and for 429 the seconds to wait."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoggedIn:
    """A session just opened: its user, its token (give it to the client once) and when it ends."""

    user: User
    token: str
    expires_at: datetime


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def log_in(request: Request, username: str, password: str, *, via: str) -> LoggedIn:
    """Check a user name and password and open a session (see the module docstring).

    Raises
    ------
    LoginRefusedError
        429 after too many failures (with the seconds until the next attempt is allowed), 401 for a wrong
        name or password or a disabled user (one message for all, so that names cannot be probed).
    """
    store, settings, now = store_of(request), settings_of(request), now_of(request)
    name = username.strip()
    client = settings.sign("client", _client(request))[:16]
    key = settings.sign("login-attempt", f"{name.lower()}\0{_client(request)}")
    failures = store.failures_since(key, now - settings.login_window)
    # A name that cannot be a user's (empty, too long, control characters) is not looked up at all.
    record = store.user_by_name(name) if 0 < len(name) <= 64 and name.isprintable() else None
    actor = User.from_record(record) if record is not None else None
    subject = f"user:{record.username}" if record is not None else "user:unknown"
    if len(failures) >= settings.login_max_failures:
        frees = failures[-settings.login_max_failures] + settings.login_window
        wait = max(1, math.ceil((frees - now).total_seconds()))
        audit(request, actor, "auth.login_refused", subject, detail={"via": via, "reason": "rate-limited",
                                                                     "client": client})  # fmt: skip
        log.warning("login refused for %s: %d failures in %s", subject, len(failures), settings.login_window)
        raise LoginRefusedError(429, f"too many failed logins: try again in {wait} s", retry_after=wait)
    if record is None or not record.active:
        ok = verify_nobody(password)
    else:
        ok = verify_password(record.password_hash, password)
    store.record_login_attempt(key, ok, now)
    if not ok or record is None:
        reason = "no such user" if record is None else ("disabled" if not record.active else "wrong password")
        audit(request, actor, "auth.login_failed", subject, detail={"via": via, "reason": reason, "client": client})
        raise LoginRefusedError(401, "wrong user name or password")
    if needs_rehash(record.password_hash):
        store.rehash_password(record.id, hash_password(password))
    token, expires = new_token(), now + settings.session_ttl
    store.create_session(record.id, token_hash(token), new_token(), expires, now)
    user = User.from_record(record)
    audit(request, user, "auth.login", subject, detail={"via": via, "client": client})
    return LoggedIn(user, token, expires)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: "//evil.example" and "https://..." would make the login an open redirect.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request, settings: WebSettings, *, next_path: str, error: str | None = None, status: int = 200
) -> Response:
    nonce = new_token()
    response = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": settings.sign("login", nonce), "next": next_path, "error": error, "lang": "id"},
        status_code=status,
    )
    response.set_cookie(
        settings.login_cookie_name, nonce, max_age=3600, path="/", secure=settings.secure_cookies, httponly=True,
        samesite="strict",
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


@auth_router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    """The login form."""
    return _login_page(request, settings_of(request), next_path=_safe_next(next))


@auth_router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the form; on success set the session cookie and go to ``next`` (303)."""
    settings = settings_of(request)
    target = _safe_next(next)
    nonce = request.cookies.get(settings.login_cookie_name, "")
    if not nonce or not csrf_token or not settings.verify("login", nonce, csrf_token):
        return _login_page(request, settings, next_path=target, status=403, error=FORM_EXPIRED)
    try:
        done = log_in(request, username, password, via="form")
    except LoginRefusedError as refused:
        response = _login_page(request, settings, next_path=target, error=refused.message, status=refused.status)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        settings.cookie_name, done.token, max_age=int(settings.session_ttl.total_seconds()), path="/",
        secure=settings.secure_cookies, httponly=True, samesite="lax",
    )  # fmt: skip
    response.delete_cookie(settings.login_cookie_name, path="/", secure=settings.secure_cookies, httponly=True)
    return response


@auth_router.post("/logout", include_in_schema=False, dependencies=[Depends(csrf_protect)])
def logout(request: Request, user: Annotated[User, Depends(current_user)]) -> Response:
    """End the session (CSRF-protected) and go back to the login form."""
    settings = settings_of(request)
    found = session_of(request)
    if found is not None:
        store_of(request).delete_session(found.token_hash)
    audit(request, user, "auth.logout", f"user:{user.username}")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(settings.cookie_name, path="/", secure=settings.secure_cookies, httponly=True)
    return response


class Credentials(BaseModel):
    """A user name and password for ``POST /api/session``."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionToken(BaseModel):
    """A session for an API client: send ``Authorization: Bearer <token>`` until ``expires_at``."""

    token: str
    expires_at: datetime


class Problem(BaseModel):
    """An error: what was refused and why."""

    detail: str


@auth_router.post(
    "/api/session",
    response_model=SessionToken,
    responses={401: {"model": Problem}, 429: {"model": Problem}},
    summary="Open an API session",
)
def api_login(request: Request, credentials: Credentials) -> SessionToken:
    """Check a user name and password; returns a bearer token (rate-limited like the login form).

    The session ends at ``expires_at`` or after 30 minutes unused, whichever comes first.
    """
    try:
        done = log_in(request, credentials.username, credentials.password, via="api")
    except LoginRefusedError as refused:
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after is not None else None
        if refused.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        raise HTTPException(refused.status, refused.message, headers=headers) from None
    return SessionToken(token=done.token, expires_at=done.expires_at)


@auth_router.delete(
    "/api/session",
    status_code=204,
    responses={401: {"model": Problem}, 403: {"model": Problem}},
    summary="End the API session",
    dependencies=[Depends(csrf_protect)],
)
def api_logout(request: Request, user: Annotated[User, Depends(current_user)]) -> Response:
    """End the session the request was made with."""
    found = session_of(request)
    if found is not None:
        store_of(request).delete_session(found.token_hash)
    audit(request, user, "auth.logout", f"user:{user.username}")
    return Response(status_code=204)
