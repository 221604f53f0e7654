# Shared by scripts/dev.sh and scripts/test.sh: a Python 3.11 virtualenv with the locked dependencies.
# Sourced, not run.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

ensure_venv() {
  local python stamp wanted
  if [ ! -x .venv/bin/python ]; then
    python=$(find_python) || die "Python 3.11 is required (Django 5.2 LTS). Install python3.11 and try again."
    say "Creating the virtualenv in .venv"
    "$python" -m venv .venv
  fi
  stamp=.venv/.qolaba-installed
  wanted=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    say "Installing the locked dependencies"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c requirements.lock -e '.[dev]'
    echo "$wanted" > "$stamp"
  fi
}
