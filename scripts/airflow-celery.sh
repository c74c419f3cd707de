#!/usr/bin/env bash
# `make airflow-celery`: the same Airflow as `make airflow`, on the distributed engine: PostgreSQL metadata, a Redis
# broker and a Celery worker (CeleryExecutor).
#
#   scripts/airflow-celery.sh          scheduler, dag-processor, triggerer, API server and one Celery worker here
#   scripts/airflow-celery.sh worker   one more Celery worker only (another machine, or a second one here)
#
# On several machines, run the first on one machine and `worker` on the others with the same settings: EWS_AIRFLOW_DB,
# EWS_AIRFLOW_BROKER, EWS_DATABASE_URL, EWS_AIRFLOW_URL (where the workers reach the API server) and a shared
# EWS_WORK_DIR/EWS_OUT_DIR (README "Airflow"). EWS_AIRFLOW_CELERY_WORKER=0 starts the first without a worker.
#
# Needs PostgreSQL (EWS_AIRFLOW_DB, default postgresql+psycopg://postgres@127.0.0.1:5432/airflow_ews, created if
# missing) and Redis (EWS_AIRFLOW_BROKER, default redis://127.0.0.1:6379/0). The ews store defaults to PostgreSQL
# too (EWS_DATABASE_URL, default .../ews_airflow): several workers never share a SQLite file.
# Everything listens on 127.0.0.1 only by default; no log servers (the worker's logs are on its disk).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG="${EWS_AIRFLOW_PG:-postgresql+psycopg://postgres@127.0.0.1:5432}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${EWS_AIRFLOW_DB:-$PG/airflow_ews}"
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__CELERY__BROKER_URL="${EWS_AIRFLOW_BROKER:-redis://127.0.0.1:6379/0}"
export AIRFLOW__CELERY__RESULT_BACKEND="db+$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
export AIRFLOW__CELERY__WORKER_CONCURRENCY="${EWS_AIRFLOW_WORKER_CONCURRENCY:-4}"
export EWS_DATABASE_URL="${EWS_DATABASE_URL:-${PG/+psycopg/}/ews_airflow}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.ews/airflow-celery}"

if [[ "${1:-}" == worker ]]; then
  source "$ROOT/scripts/airflow-env.sh"
  python -c "import airflow.providers.celery" 2>/dev/null || { echo "the celery provider is missing: pip install -e '.[celery]'" >&2; exit 1; }
  exec airflow celery worker --skip-serve-logs --concurrency "$AIRFLOW__CELERY__WORKER_CONCURRENCY"
fi

source "$ROOT/scripts/airflow-env.sh"
python - "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" "$EWS_DATABASE_URL" <<'PY'
# Create the metadata and store databases if they are missing (PostgreSQL has no CREATE DATABASE IF NOT EXISTS).
import sys
import sqlalchemy as sa
for url in sys.argv[1:]:
    target = sa.engine.make_url(url)
    if not target.drivername.startswith("postgresql"):
        continue
    target = target.set(drivername="postgresql+psycopg")  # ews's postgresql:// means psycopg 3, as here
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first():
            c.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
PY
python -c "import airflow.providers.celery" 2>/dev/null || { echo "the celery provider is missing: pip install -e '.[celery]'" >&2; exit 1; }
if [[ "${EWS_AIRFLOW_CELERY_WORKER:-1}" != 0 ]]; then
  export EWS_AIRFLOW_EXTRA_PROCESSES="celery-worker"
fi
exec "$ROOT/scripts/airflow-local.sh"
