#!/usr/bin/env bash
# Run Qolaba locally on the embedded defaults: SQLite, in-process tasks, console email, demo data.
set -euo pipefail
source "$(dirname "$0")/_setup.sh"

ensure_demo_media optional
ensure_venv
export DJANGO_SETTINGS_MODULE=qolaba.settings.development
PORT="${PORT:-8000}"
export SITE_URL="${SITE_URL:-http://127.0.0.1:${PORT}}"

say "Migrating the SQLite database (db.sqlite3)"
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py sync_role_permissions >/dev/null
say "Seeding the demo organizations"
.venv/bin/python manage.py seed_demo

cat >&2 <<MSG

  Qolaba is running at  http://127.0.0.1:${PORT}/
  Log in as owner@northwind.test (or any user above), password qolaba-demo-2026.
  Staff admin: create a superuser with  .venv/bin/python manage.py createsuperuser

MSG
exec .venv/bin/python manage.py runserver "127.0.0.1:${PORT}"
