#!/usr/bin/env bash
# `make airflow`: Airflow on one machine for ews, on the embedded default (SQLite metadata, LocalExecutor).
#
# Everything listens on 127.0.0.1 only (the API server; the log servers are not started: with LocalExecutor the
# logs are on this disk). The ews DAGs are reserialised and unpaused, example DAGs are off, and the URL and the
# admin login are printed. Stop with Ctrl-C (every process started here is stopped).
#
# Settings (environment): EWS_AIRFLOW_PORT (8080), AIRFLOW_HOME (.ews/airflow), EWS_WORK_DIR, EWS_OUT_DIR,
# EWS_DATABASE_URL, EWS_REGION, EWS_CAP_SOURCE (default: BMKG's live index) and the other EWS_* of the DAG docs.
# Twilio: an Airflow Connection twilio_default (without it, messages go to the dry-run outbox).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/airflow-env.sh"

airflow db migrate >"$AIRFLOW_HOME/logs/migrate.out" 2>&1 || { tail -40 "$AIRFLOW_HOME/logs/migrate.out" >&2; exit 1; }
airflow dags reserialize >"$AIRFLOW_HOME/logs/reserialize.out" 2>&1 || { tail -40 "$AIRFLOW_HOME/logs/reserialize.out" >&2; exit 1; }

pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
start() { local name=$1; shift; "$@" >"$AIRFLOW_HOME/logs/$name.out" 2>&1 & pids+=($!); }
start api-server airflow api-server --host "$AIRFLOW__API__HOST" --port "$PORT"
start scheduler airflow scheduler --skip-serve-logs
start dag-processor airflow dag-processor
start triggerer airflow triggerer --skip-serve-logs
if [[ " ${EWS_AIRFLOW_EXTRA_PROCESSES:-} " == *" celery-worker "* ]]; then
  start celery-worker "$ROOT/scripts/airflow-celery.sh" worker
fi

for _ in $(seq 1 120); do
  if python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/api/v2/monitor/health', timeout=2)" 2>/dev/null; then
    break
  fi
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "an Airflow process stopped: see $AIRFLOW_HOME/logs/*.out" >&2; exit 1; }; done
  sleep 1
done
for dag in $(cd "$ROOT/dags" && ls ews_*.py | sed 's/\.py$//'); do
  airflow dags unpause "$dag" >/dev/null 2>&1 || echo "could not unpause $dag (see airflow dags list-import-errors)" >&2
done
password="$(python - "$AIRFLOW_HOME" <<'PY'
import json, pathlib, sys
path = pathlib.Path(sys.argv[1]) / "simple_auth_manager_passwords.json.generated"
print(json.loads(path.read_text()).get("admin", "?") if path.exists() else "?")
PY
)"
echo "Airflow for ews: http://127.0.0.1:$PORT  (login: admin / $password)"
echo "  executor: $AIRFLOW__CORE__EXECUTOR"
echo "  DAGs unpaused: $(cd "$ROOT/dags" && ls ews_*.py | sed 's/\.py$//' | tr '\n' ' ')"
echo "  logs: $AIRFLOW_HOME/logs/*.out   outputs: $EWS_OUT_DIR   Ctrl-C stops everything"
wait -n "${pids[@]}" || true
echo "an Airflow process stopped: see $AIRFLOW_HOME/logs/*.out" >&2
exit 1
