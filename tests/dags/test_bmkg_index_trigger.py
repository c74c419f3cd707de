"""``BmkgIndexTrigger`` (event-driven scheduling of ``ews_bmkg_nowcast``) against www.bmkg.go.id's layout on loopback.

The trigger runs in a subprocess (Airflow reads its configuration at import: the test process never imports it),
looking every 0.2 s: an empty index fires nothing, each newly listed CAP file fires one event naming only it, a
re-served index fires nothing, an index that cannot be read fires nothing and the trigger keeps looking.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from test_dag_run import airflow_env

pytestmark = [pytest.mark.airflow]

SCRIPT = r"""
import asyncio, json, os, sys
from datetime import UTC, datetime
from pathlib import Path

from ews.testing.airflow_stack import NowcastSite
from ews_airflow.triggers import BmkgIndexTrigger, watched_index_url

import logging
logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True)
site = NowcastSite(Path(sys.argv[1]))
os.environ["EWS_BMKG_BASE_URL"] = site.url
os.environ.pop("EWS_CAP_SOURCE", None)
log = []

async def main():
    queue = asyncio.Queue()

    async def consume():  # as the triggerer does: the generator runs on, events are taken as they come
        async for event in BmkgIndexTrigger(poll_seconds=0.2).run():
            await queue.put(event.payload)

    watcher = asyncio.create_task(consume())

    async def next_event(timeout):
        try:
            return await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError:
            return None

    log.append(["empty", await next_event(1.0)])
    site.publish("CGT20261202101_alert.xml", b"<alert/>", "Hujan Lebat di Limboto", datetime.now(UTC))
    log.append(["first", await next_event(3.0)])
    site.publish("CGT20261202102_alert.xml", b"<alert/>", "Hujan Lebat di Tibawa", datetime.now(UTC))
    log.append(["second", await next_event(3.0)])
    log.append(["unchanged", await next_event(1.0)])
    (site.nowcast / "rss.xml").write_text("<html>502 Bad Gateway</html>")
    log.append(["garbage", await next_event(1.0)])
    site.stop()
    log.append(["down", await next_event(1.0)])
    log.append(["still running", not watcher.done()])
    watcher.cancel()

asyncio.run(main())
print(json.dumps({"log": log, "url": watched_index_url(), "site": site.url}))
"""


def test_the_trigger_fires_once_per_newly_listed_cap_file(tmp_path: Path) -> None:
    env = airflow_env(tmp_path / "airflow-home")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "site")], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    events = dict(result["log"])
    index = result["site"] + "/alerts/nowcast/id/rss.xml"
    assert result["url"] == index
    assert events["empty"] is None
    link = "https://www.bmkg.go.id/alerts/nowcast/id/"
    assert events["first"] == {"index": index, "new_links": [link + "CGT20261202101_alert.xml"], "listed": 1}
    assert events["second"] == {"index": index, "new_links": [link + "CGT20261202102_alert.xml"], "listed": 2}
    assert events["unchanged"] is None
    assert events["garbage"] is None  # an error page is no event; the 2-minute poll reports the feed
    assert events["down"] is None
    assert events["still running"] is True
    assert "cannot read the nowcast index" in done.stderr  # said, and it kept looking


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "https://www.bmkg.go.id/alerts/nowcast/id/rss.xml"),
        (
            {"EWS_CAP_SOURCE": "bmkg:en", "EWS_BMKG_BASE_URL": "http://127.0.0.1:9/"},
            "http://127.0.0.1:9/alerts/nowcast/en/rss.xml",
        ),
        ({"EWS_CAP_SOURCE": "https://mirror.example/rss.xml"}, "https://mirror.example/rss.xml"),
        ({"EWS_CAP_SOURCE": "/data/caps"}, None),  # files: nothing to watch
    ],
)
def test_the_watched_index_is_the_deployments_nowcast_source(
    tmp_path: Path, env: dict[str, str], expected: str | None
) -> None:
    script = "import json, sys\nfrom ews_airflow.triggers import watched_index_url\n"
    script += f"print(json.dumps(watched_index_url({env!r})))"
    done = subprocess.run(
        [sys.executable, "-c", script], env=airflow_env(tmp_path / "airflow-home"), cwd=REPO, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
