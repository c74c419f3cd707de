"""Airflow triggers of ews: event-driven scheduling (Airflow 3 ``AssetWatcher``), run by Airflow's triggerer.

:class:`BmkgIndexTrigger` watches BMKG's nowcast RSS index every ``poll_seconds`` (default 15) and fires when the
index lists a CAP file it did not list at the previous look, so that ``ews_bmkg_nowcast`` runs within seconds of
BMKG publishing a warning rather than at its next 2-minute tick (which stays, as the safety net). It only notices
that the index changed; deciding what is new to ews (by content: BMKG re-serves warnings under new identifiers)
stays with ``ews_bmkg_nowcast``'s poll, on the store. One small GET of the index per look; a failed look is
logged and retried at the next, never an event (the 2-minute poll still runs and reports the feed DEGRADED).

Where it looks is read in the triggerer from the deployment's environment, as the DAGs' tasks read it:
``EWS_CAP_SOURCE`` (``bmkg`` or unset: ``EWS_BMKG_BASE_URL``'s ``/alerts/nowcast/id/rss.xml``; an ``http(s)`` URL:
that index). Any other source (files, a folder) has nothing to watch: the trigger then only waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)

MAX_LINKS_IN_EVENT = 50
"""At most this many new CAP links are named in an event's payload (the poll reads the whole index anyway)."""


def watched_index_url(env: dict[str, str] | None = None) -> str | None:
    """The RSS index the deployment's nowcast source reads, or ``None`` when that source is not an index on a server."""
    from ews.ingest.bmkg_cap import DEFAULT_BASE_URL, RSS_PATH

    env = dict(os.environ) if env is None else env
    source = (env.get("EWS_CAP_SOURCE") or "bmkg").strip()
    if source in ("bmkg", "bmkg:id", "bmkg:en"):
        lang = "en" if source == "bmkg:en" else "id"
        return (env.get("EWS_BMKG_BASE_URL") or DEFAULT_BASE_URL).rstrip("/") + RSS_PATH.format(lang=lang)
    if source.startswith(("http://", "https://")) and "," not in source:
        return source
    return None


def _links(url: str) -> set[str]:
    """The CAP links the index lists now (blocking: run in a thread)."""
    from ews.ingest.bmkg_cap import parse_rss
    from ews.ingest.http import fetch_bytes

    items = parse_rss(fetch_bytes(url, timeout=10.0, retries=1), url, problems=[])
    return {item.link for item in items}


class BmkgIndexTrigger(BaseEventTrigger):
    """Fires when BMKG's nowcast index lists a CAP file it did not list before (see the module)."""

    def __init__(self, poll_seconds: float = 15.0) -> None:
        super().__init__()
        if not poll_seconds > 0:
            raise ValueError(f"poll_seconds must be a positive number of seconds, got {poll_seconds!r}")
        self.poll_seconds = float(poll_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The classpath and the keyword arguments the triggerer re-creates it from."""
        return f"{type(self).__module__}.{type(self).__qualname__}", {"poll_seconds": self.poll_seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Look every ``poll_seconds``; yield an event whenever new links appear (also at the first look)."""
        url = watched_index_url()
        if url is None:
            log.info("EWS_CAP_SOURCE is not an index on a server: nothing to watch (the 2-minute poll reads it)")
            while True:
                await asyncio.sleep(3600)
        log.info("watching BMKG's nowcast index %s every %.0f s", url, self.poll_seconds)
        listed: set[str] = set()
        while True:
            try:
                links = await asyncio.to_thread(_links, url)
            except Exception as exc:  # one failed look: the next one, and the 2-minute poll, still come
                log.warning("cannot read the nowcast index %s: %s (looking again in %.0f s)", url, exc,
                            self.poll_seconds)  # fmt: skip
            else:
                new = sorted(links - listed)
                listed = links
                if new:
                    log.info("the nowcast index lists %d new CAP file(s)", len(new))
                    yield TriggerEvent({"index": url, "new_links": new[:MAX_LINKS_IN_EVENT], "listed": len(links)})
            await asyncio.sleep(self.poll_seconds)
