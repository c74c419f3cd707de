# Sourced by scripts/airflow-local.sh and scripts/airflow-celery.sh: the settings every Airflow process of ews
# shares (scheduler, dag-processor, API server, triggerer, Celery workers). Not run on its own.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EWS_VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"  # the scheduler and workers start task processes with `airflow`: it must be on PATH
PORT="${EWS_AIRFLOW_PORT:-8080}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.ews/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"  # scripts/airflow-celery.sh: Celery
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${EWS_AIRFLOW_ADMIN:-admin}:admin"
# 127.0.0.1 unless told otherwise: on several machines, a private interface the workers reach (behind TLS).
export AIRFLOW__API__HOST="${EWS_AIRFLOW_HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="${EWS_AIRFLOW_URL:-http://$AIRFLOW__API__HOST:$PORT}"
# Where task processes (on this machine or a worker elsewhere) reach the API server.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$AIRFLOW__API__BASE_URL/execution/"
export AIRFLOW__LOGGING__COLORED_CONSOLE_LOG=False
# A task whose worker died (killed, machine lost) is failed and retried after this long without a heartbeat,
# not after Airflow's default 5 minutes: ews_dispatch's next run must not wait that long.
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="${AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT:-60}"
export EWS_WORK_DIR="${EWS_WORK_DIR:-$ROOT/.ews/airflow/work}"
export EWS_OUT_DIR="${EWS_OUT_DIR:-$ROOT/out/airflow}"
mkdir -p "$AIRFLOW_HOME/logs" "$EWS_WORK_DIR" "$EWS_OUT_DIR"
command -v airflow >/dev/null || { echo "airflow is not installed in $VENV: run make .venv/.dev" >&2; exit 1; }
