"""Satellite rain from a URL template: the steps a run needs, downloaded once and cached (edge).

A rain source may name a product on a server instead of a folder: ``<product>:<base URL or template>``.

* ``gsmap-nrt:<base>``: JAXA's GSMaP NRT hourly files in JAXA's layout,
  ``<base>/hourly/YYYY/MM/DD/gsmap_nrt.YYYYMMDD.HH00.dat.gz`` (``<base>`` is the ``realtime`` folder of a
  mirror; JAXA itself serves them over SFTP to registered users).
* ``imerg-early:<base>``: NASA's IMERG Early half-hourly GIS GeoTIFFs in NASA's layout,
  ``<base>/YYYY/MM/3B-HHR-E.MS.MRG.3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS.MMMM.V07B.30min.tif`` (``<base>`` is
  ``https://jsimpsonhttps.pps.eosdis.nasa.gov/imerg/gis/early``; ``MMMM`` the minutes from 00:00 UTC to the
  start; ``E`` the last second of the half hour).
* ``<N>min:<template>``: any other product, one file every ``N`` minutes (``N`` divides a day).

Instead of a base, ``gsmap-nrt:``/``imerg-early:`` also take a whole template (for another version such as
IMERG's ``V07C``, or a mirror's own layout). A template is a URL with Python format fields: ``{time:%Y%m%d}``
(the step's start, UTC, any ``strftime`` directives), ``{end:%H%M%S}`` (its last second) and
``{minutes:04d}`` (minutes from 00:00 UTC to the start). The last path segment must carry the time: it is
the file name the readers read the time from. Credentials in the URL (``https://user:pass@host/...``, as
NASA's PPS asks: the registered e-mail as user and password) are sent as HTTP Basic authentication and never
shown: messages, logs and file names carry the URL without them.

:func:`stage_rain_url` downloads the steps of the 24 hours the rain rules sum, plus the allowed age of the
newest file (``rain.max_age_minutes``, so that a product published hours late still fills its 24 hours),
up to now. A step not published yet (HTTP 404: these products appear hours late) is skipped silently; the
staleness check of the run (``rain.max_age_minutes``) says when the newest file is too old. Any other
failure, or a body that is not a complete raster, is a problem of the run that names the URL; the step is
tried again by the next run. Downloads are written atomically into a cache folder, so the next run (every
10 minutes) downloads only the new steps; cached files older than the window by a day are removed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ews.errors import ConfigError, FetchError
from ews.ingest.http import fetch_bytes
from ews.ingest.rainfall import raster_bytes_problem
from ews.store.artifacts import write_bytes_atomic

log = logging.getLogger(__name__)

PRODUCTS: Mapping[str, tuple[int, str]] = {
    "gsmap-nrt": (60, "/hourly/{time:%Y/%m/%d}/gsmap_nrt.{time:%Y%m%d.%H00}.dat.gz"),
    "imerg-early": (
        30,
        "/{time:%Y/%m}/3B-HHR-E.MS.MRG.3IMERG.{time:%Y%m%d-S%H%M%S}-E{end:%H%M%S}.{minutes:04d}.V07B.30min.tif",
    ),
}
"""Named products: step in minutes and the path after the base URL, in the producer's own layout."""

DAY_HOURS = 24.0
"""The longest window the rain rules sum (the 24-hour categories)."""

_GENERIC = re.compile(r"^(?P<n>\d+)min$")
_FIELDS = {"time", "end", "minutes"}
_EXAMPLE = (
    "gsmap-nrt:https://mirror.example.org/realtime or 60min:https://host/{time:%Y%m%d}/rain_{time:%Y%m%d%H%M}.tif"
)

Fetch = Callable[[str, Mapping[str, str]], bytes]
"""GETs a URL with extra headers and returns its body (raises FetchError with ``status``)."""


def _default_fetch(url: str, headers: Mapping[str, str]) -> bytes:
    # One retry only: a failed step is tried again by the next run, ten minutes later.
    return fetch_bytes(url, headers=headers, retries=1, backoff=0.5)


@dataclass(frozen=True)
class RainUrlSource:
    """A rain product on a server: a URL template (without credentials) and the step between its files."""

    product: str
    template: str
    step: timedelta
    auth: str | None = field(default=None, repr=False)  # "user:password", never shown

    @property
    def shown(self) -> str:
        """The source as messages name it: the product and the template, without credentials."""
        return f"{self.product}:{self.template}"

    @property
    def key(self) -> str:
        """A file-name-safe name of this source for its cache folder (product and a hash of the template)."""
        digest = hashlib.sha256(f"{self.template}|{self.step.total_seconds()}".encode()).hexdigest()[:12]
        return f"{self.product}-{digest}"

    def url(self, start: datetime) -> str:
        """The URL of the step starting at ``start`` (UTC)."""
        start = start.astimezone(UTC)
        end = start + self.step - timedelta(seconds=1)
        return self.template.format(time=start, end=end, minutes=start.hour * 60 + start.minute)

    def headers(self) -> dict[str, str]:
        """The request headers: HTTP Basic authentication when the URL carried credentials."""
        if self.auth is None:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(self.auth.encode()).decode("ascii")}


def is_rain_url(text: str) -> bool:
    """Whether a rain source names a product on a server (``<product>:<URL>`` or an http(s) URL)."""
    head, sep, rest = text.partition(":")
    if text.startswith(("http://", "https://")):
        return True
    return bool(sep) and (head in PRODUCTS or bool(_GENERIC.match(head))) and rest.startswith(("http://", "https://"))


_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def without_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it removed (for messages and logs)."""
    return _USERINFO.sub("", text)


def _strip_credentials(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), f"{unquote(user)}:{unquote(password)}"


def parse_rain_url(text: str) -> RainUrlSource:
    """Read a rain source ``<product>:<base URL or template>`` (see the module docstring).

    Raises
    ------
    ConfigError
        The product is unknown, the template has an unknown field or no time, the step does not divide a
        day, or the file name does not change from step to step; the message shows the source without
        its credentials and an example.
    """
    head, _, rest = text.partition(":")
    if text.startswith(("http://", "https://")):
        shown = _strip_credentials(text)[0]
        raise ConfigError(
            f"rain source {shown}: a URL needs its product or step in front, so ews knows which files to ask for: "
            f"gsmap-nrt:<URL> (hourly), imerg-early:<URL> (half-hourly) or <N>min:<URL template>, e.g. {_EXAMPLE}"
        )
    url, auth = _strip_credentials(rest)
    where = f"rain source {head}:{url}"
    if head in PRODUCTS:
        minutes, path = PRODUCTS[head]
        template = url if "{" in url else url.rstrip("/") + path
    elif (m := _GENERIC.match(head)) is not None:
        minutes, template = int(m.group("n")), url
        if "{" not in template:
            raise ConfigError(f"{where}: give a URL template with the step's time, e.g. {_EXAMPLE}")
    else:
        raise ConfigError(f"{where}: unknown rain product {head!r}; use gsmap-nrt, imerg-early or <N>min")
    if minutes <= 0 or (24 * 60) % minutes:
        raise ConfigError(f"{where}: a step of {minutes} min does not divide a day; use e.g. 10, 30 or 60 min")
    try:
        names = {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise ConfigError(f"{where}: not a valid template ({exc}); braces are for {{time:...}} fields") from None
    unknown = sorted(names - _FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown template field(s) {', '.join(unknown)}; use {{time:%Y%m%d%H%M}} (start, UTC), "
            "{end:%H%M%S} (last second) and {minutes:04d} (minutes since 00:00 UTC)"
        )
    if "time" not in names:
        raise ConfigError(f"{where}: the template has no {{time:...}} field; e.g. {_EXAMPLE}")
    source = RainUrlSource(head, template, timedelta(minutes=minutes), auth)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        names_of_steps = {source.url(first + k * source.step).rsplit("/", 1)[-1] for k in range(24 * 60 // minutes)}
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"{where}: the template does not format ({exc}); check its fields") from None
    if len(names_of_steps) != 24 * 60 // minutes:
        raise ConfigError(
            f"{where}: the file name (last part of the URL) must change with every {minutes} min step: the "
            "readers take the time from it"
        )
    return source


def rain_steps(step: timedelta, now: datetime, lookback: timedelta) -> list[datetime]:
    """Starts (UTC) of the steps that end by ``now`` and end after ``now - lookback``, oldest first.

    Steps fall on multiples of ``step`` from 00:00 UTC.
    """
    if now.tzinfo is None:
        raise ValueError("rain_steps: give a timezone-aware now")
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    last = midnight + ((now - midnight) // step) * step - step  # the newest step that has ended
    steps: list[datetime] = []
    start = last
    while start >= now - lookback - step:  # the step holding now - lookback too
        steps.append(start)
        start -= step
    return steps[::-1]


@dataclass
class RainDownload:
    """What staging one rain URL source did: the files of the run, problems, and what was asked."""

    files: list[Path] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    downloaded: int = 0
    cached: int = 0
    not_published: int = 0


def _cache_name(start: datetime, name: str) -> str:
    return f"{start:%Y%m%dT%H%M}Z--{name}"


def _link(cached: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(cached, target)
    except OSError:  # another file system: copy
        shutil.copyfile(cached, target)


def stage_rain_url(
    source: RainUrlSource,
    *,
    now: datetime,
    lookback: timedelta,
    cache_dir: Path,
    dest: Path,
    fetch: Fetch = _default_fetch,
) -> RainDownload:
    """Put the files of ``source`` for the steps of ``lookback`` before ``now`` into the folder ``dest``.

    Steps already in ``cache_dir`` are not downloaded again; the others are downloaded, checked
    (:func:`ews.ingest.rainfall.raster_bytes_problem`) and cached atomically. ``dest`` gets the files under
    the producer's names (hard links to the cache), for the readers to take the times from.

    Parameters
    ----------
    source
        The product (:func:`parse_rain_url`).
    now
        The run time (timezone-aware).
    lookback
        How far back steps are wanted: 24 h plus ``rain.max_age_minutes``.
    cache_dir
        The run's cache folder; this source's files go in ``<cache_dir>/rain/<source.key>/``.
    dest
        The folder of this run's files (created when a file is staged).
    fetch
        GETs a URL with headers (default: :func:`ews.ingest.http.fetch_bytes`, one retry).

    Returns
    -------
    RainDownload
        The files in ``dest`` (oldest first), one problem per failed step (naming the URL, never its
        credentials) and the counts.
    """
    folder = cache_dir / "rain" / source.key
    out = RainDownload()
    steps = rain_steps(source.step, now, lookback)
    for start in steps:
        url = source.url(start)
        name = url.rsplit("/", 1)[-1]
        cached = folder / _cache_name(start, name)
        if not cached.is_file():
            try:
                data = fetch(url, source.headers())
            except FetchError as exc:
                if exc.status == 404:  # not published yet (or never): the staleness check speaks for it
                    out.not_published += 1
                    continue
                out.problems.append({"source": url, "message": f"DEGRADED: rain step not fetched: {exc}"})
                continue
            except Exception as exc:  # one step fails alone
                log.debug("fetching %s failed", url, exc_info=True)
                out.problems.append({"source": url, "message": f"DEGRADED: rain step not fetched: internal error "
                                     f"{type(exc).__name__}: {exc} (please report it)"})  # fmt: skip
                continue
            problem = raster_bytes_problem(name, data)
            if problem is not None:
                out.problems.append({"source": url, "message": f"DEGRADED: rain step not used: {url}: {problem}; "
                                     "it is fetched again next run"})  # fmt: skip
                continue
            write_bytes_atomic(cached, data)
            out.downloaded += 1
        else:
            out.cached += 1
        target = dest / name
        _link(cached, target)
        out.files.append(target)
    if steps and not out.files and not out.problems:
        out.problems.append({
            "source": source.shown,
            "message": f"DEGRADED: no rain file published for {steps[0]:%Y-%m-%dT%H:%MZ}–"
                       f"{steps[-1] + source.step:%Y-%m-%dT%H:%MZ} (every step answered 404): the product is late "
                       "or the URL is wrong; check it (the first step's URL: " + source.url(steps[0]) + ")",
        })  # fmt: skip
    _prune(folder, (steps[0] if steps else now) - timedelta(days=1))
    return out


def _prune(folder: Path, before: datetime) -> None:
    """Remove cached files of steps that started before ``before``, and partial downloads a crash left (an hour old).

    Files of steps after the window stay: a replay (``--at``) of an earlier time must not empty the cache.
    """
    if not folder.is_dir():
        return
    stamp = f"{before.astimezone(UTC):%Y%m%dT%H%M}Z"
    hour_ago = datetime.now(UTC).timestamp() - 3600
    for path in folder.iterdir():
        old_step = not path.name.startswith(".") and path.name.split("--", 1)[0] < stamp
        stale_partial = path.name.startswith(".") and path.name.endswith(".tmp") and _mtime(path) < hour_ago
        if old_step or stale_partial:
            try:
                path.unlink()
            except OSError:
                log.debug("cannot remove %s from the rain cache", path, exc_info=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


__all__ = [
    "PRODUCTS",
    "RainDownload",
    "RainUrlSource",
    "is_rain_url",
    "parse_rain_url",
    "rain_steps",
    "stage_rain_url",
    "without_credentials",
]
