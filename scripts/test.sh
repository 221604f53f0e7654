#!/usr/bin/env bash
# Run the whole test suite against real PostgreSQL, Redis, a Celery worker and headless Chromium.
# On a fresh machine it installs what is missing (apt packages, the virtualenv) and starts the services.
set -euo pipefail
source "$(dirname "$0")/_setup.sh"

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

wait_for() {  # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 30); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}

ensure_postgres() {
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    # A test machine: let the local postgres user in over TCP without a password, like CI.
    local hba; hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  say "Starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for postgres pg_isready -q -h "$PG_HOST" -p "$PG_PORT" \
    || die "PostgreSQL is not answering on $PG_HOST:$PG_PORT. Start it (pg_ctlcluster ... main start) or set DATABASE_URL."
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  say "Starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
  wait_for redis sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG" \
    || die "Redis is not answering on 127.0.0.1:$REDIS_PORT. Start it or set REDIS_URL."
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium
}

if [ -z "${DATABASE_URL:-}" ]; then ensure_postgres; fi
if [ -z "${REDIS_URL:-}" ]; then ensure_redis; fi
ensure_chromium
ensure_demo_media
ensure_venv

export DJANGO_SETTINGS_MODULE=qolaba.settings.test
say "Lint (ruff), types (mypy)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
say "Layers (import-linter: the contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache
say "Migrations are complete"
# Its history check needs a database that exists even on a fresh machine (the test database does not yet).
DATABASE_URL="${DATABASE_URL:-postgres://postgres@$PG_HOST:$PG_PORT/postgres}" \
  .venv/bin/python manage.py makemigrations --check --dry-run >/dev/null \
  || die "Models changed without a migration: run manage.py makemigrations."
say "Production settings pass the deployment checks"
DJANGO_SETTINGS_MODULE=qolaba.settings.production \
  SECRET_KEY="check-deploy-$(head -c 48 /dev/urandom | base64 | tr -d '/+=' )" \
  DATABASE_URL="postgres://postgres@$PG_HOST:$PG_PORT/postgres" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
  ALLOWED_HOSTS=qolaba.example.com \
  .venv/bin/python manage.py check --deploy --fail-level WARNING
say "Tests"
# A fresh test database every run: an interrupted transactional test can leave committed rows behind.
exec .venv/bin/pytest --create-db "$@"
