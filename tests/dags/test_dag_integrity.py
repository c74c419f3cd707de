"""The DAG folder parses cleanly, each DAG has the expected shape and assets, and parsing stays light.

Airflow reads its configuration once, at import, so everything Airflow runs in a subprocess with its own
AIRFLOW_HOME; the test process never imports airflow. Parsing needs no metadata database.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, require

from ews.testing.airflow_stack import clean_env

pytestmark = pytest.mark.airflow

DAGS = REPO / "dags"
DAG_FILE = DAGS / "ews_nowcast.py"
MARK = "@@ews-test@@"
PIPELINE_EDGES = {
    "fetch": ["assess"], "assess": ["publish"], "publish": ["announce", "ask_review", "held", "queued"],
    "queued": ["announce"], "announce": [], "held": ["ask_review"], "ask_review": [],
}  # fmt: skip
EXPECTED_EDGES = PIPELINE_EDGES
# Each DAG: its own file, edges, schedule, and the assets its tasks produce (name per task).
DAG_MAP: dict[str, dict[str, Any]] = {
    "ews_nowcast": {
        "file": "ews_nowcast.py", "edges": PIPELINE_EDGES, "schedule": "*/10 * * * *",
        "outlets": {"publish": ["ews_risk_outputs"], "announce": ["ews_ledger"], "ask_review": ["ews_review_queue"]},
    },
    "ews_quakes": {
        "file": "ews_quakes.py", "edges": PIPELINE_EDGES, "schedule": "* * * * *",
        "outlets": {"publish": ["ews_quake_outputs"], "announce": ["ews_ledger"], "ask_review": ["ews_review_queue"]},
    },
    "ews_rain": {
        "file": "ews_rain.py", "edges": PIPELINE_EDGES, "schedule": "*/10 * * * *",
        "outlets": {"publish": ["ews_rain_outputs"], "announce": ["ews_ledger"], "ask_review": ["ews_review_queue"]},
    },
    "ews_forecast": {
        "file": "ews_forecast.py", "edges": PIPELINE_EDGES, "schedule": "0 */3 * * *",
        "outlets": {
            "publish": ["ews_forecast_outputs"], "announce": ["ews_ledger"], "ask_review": ["ews_review_queue"],
        },
    },
    "ews_bmkg_nowcast": {
        "file": "ews_bmkg_nowcast.py", "schedule": "AssetOrTimeSchedule",
        "edges": {"poll": ["announce_warnings", "unseen"], "unseen": ["announce_warnings"], "announce_warnings": []},
        "outlets": {"announce_warnings": ["ews_bmkg_warnings"]},
    },
    "ews_alerts": {
        "file": "ews_alerts.py", "schedule": "[Asset(name='ews_bmkg_warnings'",
        "edges": {"staged": ["assess"], **{k: v for k, v in PIPELINE_EDGES.items() if k != "fetch"}},
        "outlets": {"publish": ["ews_alert_outputs"], "announce": ["ews_ledger"], "ask_review": ["ews_review_queue"]},
    },
    "ews_dispatch": {
        "file": "ews_dispatch.py", "edges": {"deliver": []}, "schedule": "AssetOrTimeSchedule", "outlets": {},
    },
    "ews_watch": {"file": "ews_watch.py", "edges": {"check": []}, "schedule": "* * * * *", "outlets": {}},
    "ews_command": {
        "file": "ews_command.py", "edges": {"tagana": [], "reports": []}, "schedule": "* * * * *",
        "outlets": {"tagana": ["ews_ledger"], "reports": ["ews_ledger"]},
    },
    "ews_review": {
        "file": "ews_review.py", "schedule": "[Asset(name='ews_review_queue'",
        "edges": {"held_threads": ["apply", "questions"], "questions": ["review"], "review": ["apply"], "apply": []},
        "outlets": {"apply": ["ews_ledger"]}, "max_active_runs": 8,  # holds wait for people side by side
    },
}  # fmt: skip
# Parsing the DAG must not pull in the geodata, plotting or messaging stacks (nor the pipeline).
HEAVY_ROOTS = {"xarray", "rasterio", "twilio", "geopandas", "matplotlib", "shapely", "pyogrio"}
HEAVY_MODULES = {"ews.pipeline"}

DESCRIBE = f"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dags = {{}}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {{
        "fileloc": dag.fileloc,
        "schedule": str(dag.schedule),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tags": sorted(dag.tags),
        "doc_md": dag.doc_md or "",
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "start_tz": dag.start_date.utcoffset().total_seconds() if dag.start_date else None,
        "params": {{k: dag.params[k] for k in dag.params}},
        "tasks": {{
            t.task_id: {{
                "downstream": sorted(t.downstream_task_ids),
                "retries": t.retries,
                "retry_delay_s": t.retry_delay.total_seconds(),
                "outlets": [{{"name": a.name, "uri": a.uri}} for a in t.outlets],
            }}
            for t in dag.tasks
        }},
    }}
result = {{"import_errors": bag.import_errors, "warnings": bag.captured_warnings, "dags": dags}}
print("{MARK}" + json.dumps(result))
"""

PARSE = f"""
import json, runpy, sys
ns = runpy.run_path(sys.argv[1])
roots, exact = set(json.loads(sys.argv[2])), set(json.loads(sys.argv[3]))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in roots or m in exact)
run_ids = ["scheduled__2026-09-24T07:30:00+00:00", "a:b", "a+b", "../../etc"]
dirs = [str(ns["run_dir_for"]("gorontalo-kec", r)) for r in run_ids]
print("{MARK}" + json.dumps({{"heavy": heavy, "run_dirs": dirs}}))
"""


HEAVY_CHECK = f"""
import json, runpy, sys
runpy.run_path(sys.argv[1])
roots, exact = set(json.loads(sys.argv[2])), set(json.loads(sys.argv[3]))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in roots or m in exact)
print("{MARK}" + json.dumps({{"heavy": heavy}}))
"""


def airflow_env(home: Path) -> dict[str, str]:
    """An environment for Airflow subprocesses: own home, this repo's dags, no examples, no stray EWS_*."""
    return clean_env(home, DAGS)


def run_python(script: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert lines, f"no result line in the output:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
    return result


@pytest.fixture(scope="module")
def parse_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require(
        importlib.util.find_spec("airflow") is not None,
        "apache-airflow is not installed: pip install '.[airflow]'",
    )
    env = airflow_env(tmp_path_factory.mktemp("airflow-home"))
    # Parsing must not read these: they are read when a task runs, so a bad value cannot break parsing.
    env.update(
        EWS_REGION="/nonexistent/region.yaml",
        EWS_WORK_DIR="/nonexistent/work",
        EWS_OUT_DIR="/nonexistent",
    )
    return env


@pytest.fixture(scope="module")
def bag(parse_env: dict[str, str]) -> dict[str, Any]:
    return run_python(DESCRIBE, str(DAGS), env=parse_env)


@pytest.fixture(scope="module")
def nowcast(bag: dict[str, Any]) -> dict[str, Any]:
    assert "ews_nowcast" in bag["dags"], sorted(bag["dags"])
    dag: dict[str, Any] = bag["dags"]["ews_nowcast"]
    return dag


def test_dag_folder_has_no_import_errors_or_warnings(bag: dict[str, Any]) -> None:
    assert bag["import_errors"] == {}
    assert bag["warnings"] == {}


def test_nowcast_comes_from_its_own_file(nowcast: dict[str, Any]) -> None:
    assert Path(nowcast["fileloc"]).resolve() == DAG_FILE.resolve()


def test_nowcast_edges_match_the_expected_map(nowcast: dict[str, Any]) -> None:
    edges = {task_id: task["downstream"] for task_id, task in nowcast["tasks"].items()}
    assert edges == EXPECTED_EDGES


def test_nowcast_schedule(nowcast: dict[str, Any]) -> None:
    assert nowcast["schedule"] == "*/10 * * * *"
    assert nowcast["catchup"] is False
    assert nowcast["max_active_runs"] == 1
    assert nowcast["start_tz"] == 0.0, f"start_date must be UTC: {nowcast['start_date']}"


def test_nowcast_retries_quickly(nowcast: dict[str, Any]) -> None:
    for task_id, task in nowcast["tasks"].items():
        assert task["retries"] >= 1, task_id
        assert 0 < task["retry_delay_s"] <= 60, task_id


def test_nowcast_is_tagged_and_documented(nowcast: dict[str, Any]) -> None:
    assert {"ews", "bmkg", "nowcast"} <= set(nowcast["tags"])
    for env_var in ("EWS_REGION", "EWS_CAP_SOURCE", "EWS_WORK_DIR", "EWS_OUT_DIR", "EWS_BMKG_BASE_URL"):
        assert env_var in nowcast["doc_md"], env_var


def test_nowcast_params_default_to_the_environment_at_run_time(nowcast: dict[str, Any]) -> None:
    # None = "read the environment when the task runs" (the parse env points them at /nonexistent).
    assert nowcast["params"] == {
        "region": None,
        "source": None,
        "at": None,
        "rain": None,
        "forecast": None,
        "quakes": None,
    }


def test_publish_produces_the_risk_outputs_asset(nowcast: dict[str, Any]) -> None:
    outlets = {task_id: task["outlets"] for task_id, task in nowcast["tasks"].items() if task["outlets"]}
    assert outlets == {
        "publish": [{"name": "ews_risk_outputs", "uri": "x-ews://risk-outputs"}],
        "announce": [{"name": "ews_ledger", "uri": "x-ews://send-ledger"}],
        "ask_review": [{"name": "ews_review_queue", "uri": "x-ews://review-queue"}],
    }


def test_every_dag_matches_its_map(bag: dict[str, Any]) -> None:
    assert sorted(bag["dags"]) == sorted(DAG_MAP)
    for dag_id, expected in DAG_MAP.items():
        dag = bag["dags"][dag_id]
        assert Path(dag["fileloc"]).name == expected["file"], dag_id  # one file per DAG
        assert {t: task["downstream"] for t, task in dag["tasks"].items()} == expected["edges"], dag_id
        assert dag["schedule"].startswith(expected["schedule"]), (dag_id, dag["schedule"])
        outlets = {t: [a["name"] for a in task["outlets"]] for t, task in dag["tasks"].items() if task["outlets"]}
        assert outlets == expected["outlets"], dag_id
        assert dag["catchup"] is False, dag_id
        assert dag["max_active_runs"] == expected.get("max_active_runs", 1), dag_id  # runs that must not overlap
        assert dag["start_tz"] == 0.0, dag_id


def test_dispatch_runs_on_the_ledger_asset_and_every_minute(bag: dict[str, Any]) -> None:
    schedule = bag["dags"]["ews_dispatch"]["schedule"]
    assert "ews_ledger" in schedule
    assert "* * * * *" in schedule


WATCHER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from airflow.triggers.base import BaseEventTrigger
import ews_bmkg_nowcast
watchers = ews_bmkg_nowcast.BMKG_INDEX.watchers
print(sys.argv[2] + json.dumps({"watchers": [
    {"name": w.name, "event_trigger": isinstance(w.trigger, BaseEventTrigger),
     "serialized": list(w.trigger.serialize())}
    for w in watchers
]}))
"""


def test_the_nowcast_poll_runs_when_the_triggerer_sees_the_index_change_and_every_2_minutes(
    bag: dict[str, Any], parse_env: dict[str, str]
) -> None:
    schedule = bag["dags"]["ews_bmkg_nowcast"]["schedule"]
    assert "ews_bmkg_nowcast_index" in schedule
    assert "*/2 * * * *" in schedule
    watchers = run_python(WATCHER, str(DAGS), MARK, env=parse_env)["watchers"]
    assert watchers == [
        {
            "name": "ews_bmkg_index_watch",
            "event_trigger": True,  # the kind of trigger Airflow accepts for event-driven scheduling
            "serialized": ["ews_airflow.triggers.BmkgIndexTrigger", {"poll_seconds": 15.0}],
        }
    ]


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_each_dag_file_imports_no_heavy_module(parse_env: dict[str, str], dag_file: str) -> None:
    found = run_python(
        HEAVY_CHECK, str(DAGS / dag_file), json.dumps(sorted(HEAVY_ROOTS)), json.dumps(sorted(HEAVY_MODULES | {"ews"})),
        env=parse_env,
    )  # fmt: skip
    assert found["heavy"] == [], dag_file


@pytest.fixture(scope="module")
def parsed(parse_env: dict[str, str]) -> dict[str, Any]:
    return run_python(
        PARSE,
        str(DAG_FILE),
        json.dumps(sorted(HEAVY_ROOTS)),
        json.dumps(sorted(HEAVY_MODULES)),
        env=parse_env,
    )


def test_parsing_the_dag_imports_no_heavy_module(parsed: dict[str, Any]) -> None:
    assert parsed["heavy"] == []


def test_run_folders_are_safe_and_distinct(parsed: dict[str, Any]) -> None:
    dirs = [Path(d) for d in parsed["run_dirs"]]
    assert len(set(dirs)) == len(dirs)
    for d in dirs:
        assert d.parent == Path("/nonexistent/work/gorontalo-kec")
        assert not set(d.name) & set(":+/\\"), d.name
        assert not d.name.startswith("."), d.name


def test_quakes_dag_polls_often_and_reads_only_quakes(bag: dict[str, Any]) -> None:
    quakes = bag["dags"]["ews_quakes"]
    assert Path(quakes["fileloc"]).resolve() == (DAGS / "ews_quakes.py").resolve()
    assert quakes["schedule"] == "* * * * *"
    assert quakes["max_active_runs"] == 1
    assert {task_id: task["downstream"] for task_id, task in quakes["tasks"].items()} == EXPECTED_EDGES
    assert quakes["params"] == {"region": None, "quakes": None, "at": None}
    outlets = {task_id: task["outlets"] for task_id, task in quakes["tasks"].items() if task["outlets"]}
    assert outlets == {
        "publish": [{"name": "ews_quake_outputs", "uri": "x-ews://quake-outputs"}],
        "announce": [{"name": "ews_ledger", "uri": "x-ews://send-ledger"}],
        "ask_review": [{"name": "ews_review_queue", "uri": "x-ews://review-queue"}],
    }
