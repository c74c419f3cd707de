"""``airflow dags test ews_nowcast`` end to end on the recorded BMKG feed served on loopback.

The recorded index (2026-09-24) lists 11 alerts and only the Gorontalo one was recorded; the other 10
answer 404, so the run must succeed with 10 rejected inputs listed in report.json. Airflow runs in
subprocesses with one sqlite metadata database, migrated once per session.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, require

from ews.testing.airflow_stack import clean_env

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

# While CGT20260924002 (Gorontalo, 2026-09-24 14:27-17:27 WITA) is in force.
AT = "2026-09-24T15:30:00+08:00"
OUTPUTS = ("risk_map.png", "risk_map.html", "summary.csv", "villages.gpkg", "outbox.jsonl", "report.json")
MARK = "@@ews-test@@"

ASSET_EVENTS = """
import json, sys
from sqlalchemy import select
from airflow.models.asset import AssetEvent, AssetModel
from airflow.utils.session import create_session

with create_session() as session:
    rows = session.execute(
        select(AssetModel.name, AssetEvent.source_task_id, AssetEvent.extra).join(
            AssetModel, AssetModel.id == AssetEvent.asset_id
        )
    ).all()
print(sys.argv[1] + json.dumps([list(r) for r in rows]))
"""


def airflow_env(home: Path) -> dict[str, str]:
    """An environment for Airflow subprocesses: own home, this repo's dags, no examples, no stray EWS_*."""
    return clean_env(home, REPO / "dags")


def airflow(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(stdout: str) -> Any:
    """The JSON document an ``-o json`` command printed (Airflow may log lines before it)."""
    lines = [line for line in stdout.splitlines() if line.startswith(("[", "{"))]
    assert lines, stdout[-4000:]
    return json.loads(lines[-1])


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One AIRFLOW_HOME with a migrated sqlite metadata database for the session."""
    require(
        importlib.util.find_spec("airflow") is not None,
        "apache-airflow is not installed: pip install '.[airflow]'",
    )
    home = tmp_path_factory.mktemp("airflow-home")
    done = airflow("db", "migrate", env=airflow_env(home))
    assert done.returncode == 0, done.stderr[-4000:]
    return home


@pytest.fixture
def gorontalo_region(tmp_path: Path, kec_dir: Path) -> Path:
    path = tmp_path / "gorontalo-kec.yaml"
    boundaries = kec_dir / "wilayah_boundaries_kec_75.geojson"
    path.write_text(
        "id: gorontalo-kec\n"
        "name: Gorontalo\n"
        'province_code: "75"\n'
        f"boundaries: {{path: {json.dumps(str(boundaries))}, id_field: kode, name_field: nama}}\n",
        encoding="utf-8",
    )
    return path


def asset_events(env: dict[str, str]) -> list[list[Any]]:
    """(asset name, producing task, extra) of every asset event in the metadata database."""
    done = subprocess.run(
        [sys.executable, "-c", ASSET_EVENTS, MARK],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert lines, done.stdout[-4000:]
    events: list[list[Any]] = json.loads(lines[-1][len(MARK) :])
    return events


def test_nowcast_dag_runs_end_to_end_on_the_recorded_feed(
    bmkg_site: str, gorontalo_region: Path, airflow_home: Path, tmp_path: Path
) -> None:
    env = airflow_env(airflow_home)
    env.update(
        EWS_BMKG_BASE_URL=bmkg_site,
        EWS_WORK_DIR=str(tmp_path / "work"),
        EWS_OUT_DIR=str(tmp_path / "out"),
    )
    conf = {"region": str(gorontalo_region), "source": "bmkg", "at": AT}
    done = airflow("dags", "test", "ews_nowcast", "--conf", json.dumps(conf), env=env)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]

    runs = last_json(airflow("dags", "list-runs", "ews_nowcast", "-o", "json", env=env).stdout)
    run = max(runs, key=lambda r: r["run_after"])
    assert run["state"] == "success", runs
    states = last_json(
        airflow("tasks", "states-for-dag-run", "ews_nowcast", run["run_id"], "-o", "json", env=env).stdout
    )
    # Nobody subscribes here, but the Siaga villages' Tagana notices (no contact configured) are queued: the
    # ledger is announced to ews_dispatch.
    assert {s["task_id"]: s["state"] for s in states} == {
        "fetch": "success",
        "assess": "success",
        "publish": "success",
        "queued": "success",
        "announce": "success",
        "held": "success",
        "ask_review": "skipped",  # nothing held: the region has no review levels
    }

    out = tmp_path / "out" / "gorontalo-kec"
    for name in OUTPUTS:
        assert (out / name).is_file(), f"{name} missing from {sorted(p.name for p in out.iterdir())}"

    with (out / "summary.csv").open(newline="", encoding="utf-8") as handle:
        levels = {row["name"].upper(): row["level_label"] for row in csv.DictReader(handle)}
    # Moderate / Immediate / Observed and >= 50 % of the kecamatan covered => Siaga (README "Levels").
    assert levels["DENGILO"] == "Siaga"
    assert levels["MANANGGU"] == "Siaga"

    # The 10 alerts of the index that the site does not have are rejected; the batch still went through.
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["warnings"] == 1
    assert len(report["problems"]) == 10
    assert all("404" in p["message"] for p in report["problems"])
    assert all(p["source"].startswith(bmkg_site) for p in report["problems"])
    # A CAP file the index lists but the site cannot serve is a degraded source: logged as an error each.
    assert all(p["message"].startswith("DEGRADED: CAP file of RSS item") for p in report["problems"])
    assert log.count("DEGRADED: CAP file of RSS item") >= 10

    # Messages go to the send ledger, not to a dry-run outbox: the run's outbox file lists none.
    assert (out / "outbox.jsonl").read_text(encoding="utf-8") == ""

    # Downstream DAGs chain on the asset event; its extra carries the keys they need.
    events = asset_events(env)
    ledger = [e for e in events if e[0] == "ews_ledger" and e[2].get("region") == "gorontalo-kec"]
    assert [(task, extra["source_dag"]) for _, task, extra in ledger] == [("announce", "ews_nowcast")]
    assert ledger[0][2]["queued"] >= 1
    mine = [e for e in events if e[0] == "ews_risk_outputs" and e[2].get("out_dir") == str(out)]
    assert len(mine) == 1, mine
    _, task_id, extra = mine[0]
    assert task_id == "publish"
    assert extra == {
        "region": "gorontalo-kec",
        "out_dir": str(out),
        "at": AT,
        "warning_ids": ["2.49.0.1.360.0.2026.09.24.07.75.002"],
    }


def test_nowcast_dag_fails_at_once_on_a_bad_region_file(airflow_home: Path, tmp_path: Path) -> None:
    # A config error is permanent: `fetch` fails without using its 3 retries, and nothing downstream runs.
    env = airflow_env(airflow_home)
    env.update(EWS_WORK_DIR=str(tmp_path / "work"), EWS_OUT_DIR=str(tmp_path / "out"))
    conf = {"region": str(tmp_path / "missing.yaml"), "source": str(tmp_path / "no-feed"), "at": AT}
    done = airflow("dags", "test", "ews_nowcast", "--conf", json.dumps(conf), env=env)
    log = done.stdout + done.stderr
    assert done.returncode != 0, log[-6000:]
    assert "missing.yaml: cannot read region file" in log

    runs = last_json(airflow("dags", "list-runs", "ews_nowcast", "-o", "json", env=env).stdout)
    run = max(runs, key=lambda r: r["run_after"])
    assert run["state"] == "failed", runs
    states = last_json(
        airflow("tasks", "states-for-dag-run", "ews_nowcast", run["run_id"], "-o", "json", env=env).stdout
    )
    assert {s["task_id"]: s["state"] for s in states} == {
        "fetch": "failed",
        "assess": "upstream_failed",
        "publish": "upstream_failed",
        "queued": "upstream_failed",
        "announce": "upstream_failed",
        "held": "upstream_failed",
        "ask_review": "upstream_failed",
    }
    assert not (tmp_path / "out").exists()


def test_quakes_dag_alerts_coastal_villages_from_the_live_feeds(
    airflow_home: Path, tmp_path: Path, kec_dir: Path, shared_data: Path, serve_dir: Any
) -> None:
    tews = tmp_path / "tews"
    tews.mkdir()
    feed = shared_data / "bmkg" / "gempa" / "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
    (tews / "gempaterkini.json").write_bytes(feed.read_bytes())  # autogempa/gempadirasakan: 404 -> degraded
    region = tmp_path / "bali.yaml"
    region.write_text(
        "id: bali-kec\nname: Bali\nprovince_code: '51'\n"
        f"boundaries: {{path: {json.dumps(str(kec_dir / 'wilayah_boundaries_kec_51.geojson'))}}}\n"
        "earthquake: {tsunami_radius_km: 1000, land: []}\n",  # an island: no land border to mistake for coast
        encoding="utf-8",
    )
    env = airflow_env(airflow_home)
    env.update(
        EWS_BMKG_TEWS_URL=serve_dir(tews) + "/",
        EWS_WORK_DIR=str(tmp_path / "work"),
        EWS_OUT_DIR=str(tmp_path / "out"),
    )
    conf = {"region": str(region), "at": "2021-12-14T04:00:00+00:00"}  # quakes: bmkg by default
    done = airflow("dags", "test", "ews_quakes", "--conf", json.dumps(conf), env=env)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    report = json.loads((tmp_path / "out" / "bali-kec-gempa" / "report.json").read_text(encoding="utf-8"))
    assert report["warnings"] == 2  # BMKG's two solutions of the one event (M7.5, then M7.4); no CAP warnings
    assert report["levels"]["Awas"] == 35  # the coastal kecamatan within 1,000 km of the Flores Sea event
    degraded = [p for p in report["problems"] if p["message"].startswith("DEGRADED")]
    assert {p["source"].rsplit("/", 1)[-1] for p in degraded} == {"autogempa.json", "gempadirasakan.json"}
    assert "DEGRADED" in log


def rain_drop(tmp_path: Path, kec_dir: Path) -> Path:
    """A drop folder with the last hour's raster: 30 mm/h over all of Gorontalo (BMKG's "sangat lebat", Siaga)."""
    from datetime import UTC, datetime, timedelta

    import geopandas as gpd
    import numpy as np

    from ews.synthetic_rain import write_geotiff

    west, south, east, north = gpd.read_file(kec_dir / "wilayah_boundaries_kec_75.geojson").total_bounds
    res, margin = 0.02, 0.3
    cols, rows = int((east - west + 2 * margin) / res) + 1, int((north - south + 2 * margin) / res) + 1
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    drop = tmp_path / "drop"
    drop.mkdir()
    write_geotiff(
        drop / f"rain_{end:%Y%m%dT%H%M}.tif", np.full((1, rows, cols), 30.0, dtype=np.float32),
        transform=(res, 0.0, west - margin, 0.0, -res, north + margin), times=[end - timedelta(hours=1)],
        step_hours=1.0,
    )  # fmt: skip
    return drop


def test_rain_dag_alerts_from_a_drop_folder(
    airflow_home: Path, tmp_path: Path, gorontalo_region: Path, kec_dir: Path
) -> None:
    # A raster dropped in EWS_RAIN_SOURCE (as a download task or a sensor would): 30 mm/h over all of Gorontalo in
    # the last hour is BMKG's "sangat lebat", Siaga, everywhere; the messages are queued and the ledger announced.
    drop = rain_drop(tmp_path, kec_dir)
    env = airflow_env(airflow_home)
    env.update(EWS_RAIN_SOURCE=str(drop), EWS_WORK_DIR=str(tmp_path / "work"), EWS_OUT_DIR=str(tmp_path / "out"))
    done = airflow("dags", "test", "ews_rain", "--conf", json.dumps({"region": str(gorontalo_region)}), env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    report = json.loads((tmp_path / "out" / "gorontalo-kec-hujan" / "report.json").read_text(encoding="utf-8"))
    assert report["levels"]["Siaga"] > 0, report
    assert not [p for p in report["problems"] if p["message"].startswith("DEGRADED")]
    ledger = [e for e in asset_events(env) if e[0] == "ews_ledger" and e[2].get("source_dag") == "ews_rain"]
    assert ledger


def test_rain_dag_alerts_from_gsmap_nrt_on_a_server_in_jaxas_layout(
    airflow_home: Path, tmp_path: Path, gorontalo_region: Path, kec_dir: Path, serve_dir: Any
) -> None:
    # The same through a URL template: JAXA's realtime/hourly/YYYY/MM/DD/ folders on loopback, two hours published
    # (30 mm/h over Gorontalo in the newest: "sangat lebat", Siaga), the hour that just ended not out yet (404).
    from datetime import UTC, datetime, timedelta

    import geopandas as gpd
    import numpy as np

    from ews.synthetic_rain import gsmap_name, write_gsmap

    west, south, east, north = gpd.read_file(kec_dir / "wilayah_boundaries_kec_75.geojson").total_bounds
    lats = np.round(np.arange(np.floor(south * 10) / 10 - 0.25, north + 0.3, 0.1), 2)
    lons = np.round(np.arange(np.floor(west * 10) / 10 - 0.25, east + 0.3, 0.1), 2)
    at = datetime(2026, 11, 28, 15, 7, tzinfo=UTC)
    for start, rate in ((at - timedelta(hours=4, minutes=7), 2.0), (at - timedelta(hours=3, minutes=7), 30.0)):
        start = start.replace(minute=0)
        folder = tmp_path / "jaxa" / "realtime" / "hourly" / f"{start:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_gsmap(folder / gsmap_name(start), np.full((len(lats), len(lons)), rate), start, lats=lats, lons=lons)
    env = airflow_env(airflow_home)
    env.update(
        EWS_RAIN_SOURCE=f"gsmap-nrt:{serve_dir(tmp_path / 'jaxa')}/realtime",
        EWS_WORK_DIR=str(tmp_path / "work"),
        EWS_OUT_DIR=str(tmp_path / "out"),
    )
    # At 15:07 the published hours are 11:00-12:00 and 12:00-13:00: the newest ended 2 h 07 min ago, within 180 min.
    conf = {"region": str(gorontalo_region), "at": at.isoformat()}
    done = airflow("dags", "test", "ews_rain", "--conf", json.dumps(conf), env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    report = json.loads((tmp_path / "out" / "gorontalo-kec-hujan" / "report.json").read_text(encoding="utf-8"))
    assert report["levels"]["Siaga"] > 0, report
    assert not [p for p in report["problems"] if p["message"].startswith("DEGRADED")]
    cached = sorted(p.name.split("--", 1)[1] for p in (tmp_path / "work" / "gorontalo-kec" / "cache").rglob("*--*"))
    assert cached == ["gsmap_nrt.20261128.1100.dat.gz", "gsmap_nrt.20261128.1200.dat.gz"]


def test_the_poll_announces_only_warnings_ews_has_not_seen(
    bmkg_site: str, gorontalo_region: Path, airflow_home: Path, tmp_path: Path
) -> None:
    env = airflow_env(airflow_home)
    env.update(EWS_BMKG_BASE_URL=bmkg_site, EWS_WORK_DIR=str(tmp_path / "work"), EWS_OUT_DIR=str(tmp_path / "out"))
    conf = json.dumps({"region": str(gorontalo_region), "source": "bmkg", "at": AT})

    def polled() -> list[list[Any]]:
        done = airflow("dags", "test", "ews_bmkg_nowcast", "--conf", conf, env=env)
        assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
        return [e for e in asset_events(env) if e[0] == "ews_bmkg_warnings"]

    (first,) = polled()
    assert first[2]["new"] == ["2.49.0.1.360.0.2026.09.24.07.75.002"]
    assert Path(first[2]["run_dir"], "warnings.json").is_file()  # staged for ews_alerts
    # Polled again before ews_alerts stored it (the watcher's run and the 2-minute tick's): announced once only.
    assert len(polled()) == 1
    # Once the warning is in the store (as ews_alerts or ews_nowcast leaves it), the poll announces nothing.
    assert airflow("dags", "test", "ews_nowcast", "--conf", conf, env=env).returncode == 0
    assert len(polled()) == 1


def test_rain_dag_runs_its_heavy_steps_in_the_ews_worker_when_one_is_configured(
    airflow_home: Path, tmp_path: Path, gorontalo_region: Path, kec_dir: Path
) -> None:
    # EWS_WORKER_URL: the DAG's assess and publish run in the long-lived `ews worker` (warm), with the same outputs.
    import socket
    import time
    import urllib.request

    drop = rain_drop(tmp_path, kec_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    database, cache = f"sqlite:///{tmp_path / 'ews.db'}", tmp_path / "cache"
    env = airflow_env(airflow_home)
    worker = subprocess.Popen(
        [sys.executable, "-m", "ews.cli", "worker", "--port", str(port), "--database", database, "--cache-dir",
         str(cache), "-q"], env=env, cwd=REPO,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def health() -> dict[str, Any]:
        with urllib.request.urlopen(f"{url}/health", timeout=10) as answer:
            return dict(json.loads(answer.read()))

    try:
        for _ in range(300):
            try:
                assert health()["status"] == "ok"
                break
            except OSError:
                time.sleep(0.1)
        env.update(
            EWS_RAIN_SOURCE=str(drop), EWS_WORK_DIR=str(tmp_path / "work"), EWS_OUT_DIR=str(tmp_path / "out"),
            EWS_DATABASE_URL=database, EWS_CACHE_DIR=str(cache), EWS_WORKER_URL=url,
        )  # fmt: skip
        done = airflow("dags", "test", "ews_rain", "--conf", json.dumps({"region": str(gorontalo_region)}), env=env)
        assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
        served = health()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert (served["cycles"], served["failed"]) == (2, 0)  # assess and publish, in the worker
    report = json.loads((tmp_path / "out" / "gorontalo-kec-hujan" / "report.json").read_text(encoding="utf-8"))
    assert report["levels"]["Siaga"] > 0, report
    assert report["queued"] > 0
    ledger = [e for e in asset_events(env) if e[0] == "ews_ledger" and e[2].get("source_dag") == "ews_rain"]
    assert ledger
