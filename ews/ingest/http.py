"""HTTP GET with a timeout and bounded retries on every request (stdlib only).

Redirects are followed only within the origin of the URL asked for: the same host and port, or the
same host moved from ``http`` to ``https`` (default ports). A redirect to another host or port, or from
``https`` down to ``http``, is refused (:class:`~ews.errors.FetchError`) unless the host is listed in
``allowed_hosts`` (a region sets them as ``fetch.allowed_redirect_hosts``). So a compromised or
misconfigured mirror cannot send ews to fetch warnings from a server nobody configured.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from ews import __version__
from ews.errors import FetchError

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_SETTING = "fetch.allowed_redirect_hosts"
"""The region key that allows redirects to other hosts (named in the refusal)."""


def _origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, host in lower case, the port made explicit for http(s)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: never the same origin
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def redirect_refusal(start: str, target: str, allowed_hosts: Collection[str] = ()) -> str | None:
    """Why a redirect from ``start`` (the URL asked for) to ``target`` is refused, or ``None`` to follow it.

    Followed: the same scheme, host and port; ``http`` to ``https`` on the same host from port 80 to 443;
    or any http(s) URL whose host (``"mirror.example.org"``: every port) or ``host:port`` is in
    ``allowed_hosts``. Host names compare case-insensitively; ``127.0.0.1`` and ``localhost`` are
    different hosts (no name is resolved).
    """
    scheme, host, port = _origin(start)
    to_scheme, to_host, to_port = _origin(target)
    if to_scheme not in _DEFAULT_PORTS:
        return f"the target is not an http(s) URL ({to_scheme or 'no scheme'})"
    allowed = {h.strip().lower() for h in allowed_hosts}
    if to_host in allowed or f"{to_host}:{to_port}" in allowed:
        return None
    if scheme == "https" and to_scheme == "http":
        return "it goes down from https to http"
    if to_host != host:
        return f"it leaves host {host} for host {to_host}"
    if to_scheme == scheme and to_port == port:
        return None
    if (scheme, port, to_scheme, to_port) == ("http", 80, "https", 443):
        return None
    return f"it moves from port {port} to port {to_port} of {host}"


class _OriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only when :func:`redirect_refusal` allows it, judged against the first URL."""

    def __init__(self, start: str, allowed_hosts: Collection[str]) -> None:
        self.start = start
        self.allowed_hosts = allowed_hosts

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        refusal = redirect_refusal(self.start, newurl, self.allowed_hosts)
        if refusal is not None:
            fp.close()
            host = _origin(newurl)[1] or newurl
            raise FetchError(
                f"{self.start}: the server redirected (HTTP {code}) to {newurl}; refused because {refusal}. "
                f"ews follows redirects only within the host it was pointed at: point the source (or its "
                f"EWS_BMKG_*_URL variable) at the final server, or, if you trust it, add '{host}' to "
                f"{REDIRECT_SETTING} in the region file"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_bytes(
    url: str,
    *,
    timeout: float = 20.0,
    retries: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    allowed_hosts: Collection[str] = (),
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """GET ``url`` and return its body.

    Transient failures (connection errors, time-outs, 408/429/5xx) are retried ``retries`` times with
    exponential back-off; other HTTP errors fail at once. Redirects are followed within the origin of
    ``url`` only (see :func:`redirect_refusal`).

    Parameters
    ----------
    url
        An http(s) URL.
    timeout
        Seconds per attempt (connect and each read).
    retries
        Attempts after the first one, for transient failures.
    backoff
        First delay between attempts in seconds; doubled each time.
    sleep
        Injected for tests.
    allowed_hosts
        Other hosts (``"host"``: any port; ``"host:port"``: that port) that redirects may lead to.
    headers
        Extra request headers (e.g. ``Authorization``); never logged or put in messages.

    Raises
    ------
    FetchError
        After the last attempt, at once for a permanent error, a body over :data:`MAX_BYTES`, or a
        refused redirect; the message names the URL (and the redirect target). ``status`` is the HTTP
        status when the server answered with an error (404 at once: the file is not there).
    """
    if not url.startswith(("http://", "https://")):
        raise FetchError(f"{url}: only http(s) URLs can be fetched")
    request = urllib.request.Request(url, headers={**(headers or {}), "User-Agent": f"ews/{__version__}"})  # noqa: S310
    opener = urllib.request.build_opener(_OriginRedirects(url, allowed_hosts))
    last = ""
    status: int | None = None
    for attempt in range(retries + 1):
        try:
            with opener.open(request, timeout=timeout) as response:
                body: bytes = response.read(MAX_BYTES + 1)
            if len(body) > MAX_BYTES:
                raise FetchError(f"{url}: response larger than {MAX_BYTES} bytes; refusing it")
            return body
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRY_STATUS:
                raise FetchError(
                    f"{url}: HTTP {exc.code} {exc.reason}; check the URL/EWS_BMKG_BASE_URL", status=exc.code
                ) from None
            last, status = f"HTTP {exc.code}", exc.code
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last, status = str(getattr(exc, "reason", exc)), None
        if attempt < retries:
            delay = backoff * 2**attempt
            log.warning("fetch %s failed (%s); retry %d/%d in %.1fs", url, last, attempt + 1, retries, delay)
            sleep(delay)
    raise FetchError(f"{url}: failed after {retries + 1} attempts ({last}); the source may be down", status=status)
