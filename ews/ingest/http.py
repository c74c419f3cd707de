"""HTTP GET with a timeout and bounded retries on every request (stdlib only)."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from ews import __version__
from ews.errors import FetchError

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


def fetch_bytes(
    url: str,
    *,
    timeout: float = 20.0,
    retries: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """GET ``url`` and return its body.

    Transient failures (connection errors, time-outs, 408/429/5xx) are retried ``retries`` times with
    exponential back-off; other HTTP errors fail at once.

    Raises
    ------
    FetchError
        After the last attempt, or at once for a permanent error; the message names the URL.
    """
    if not url.startswith(("http://", "https://")):
        raise FetchError(f"{url}: only http(s) URLs can be fetched")
    request = urllib.request.Request(url, headers={"User-Agent": f"ews/{__version__}"})  # noqa: S310
    last = ""
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
                body: bytes = response.read(MAX_BYTES + 1)
            if len(body) > MAX_BYTES:
                raise FetchError(f"{url}: response larger than {MAX_BYTES} bytes; refusing it")
            return body
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRY_STATUS:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}; check the URL/EWS_BMKG_BASE_URL") from None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt < retries:
            delay = backoff * 2**attempt
            log.warning("fetch %s failed (%s); retry %d/%d in %.1fs", url, last, attempt + 1, retries, delay)
            sleep(delay)
    raise FetchError(f"{url}: failed after {retries + 1} attempts ({last}); the source may be down")
