# Shared by scripts/dev.sh and scripts/test.sh: a Python 3.11 virtualenv with the locked dependencies.
# Sourced, not run.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }
warn() { printf '\033[1;33mWARNING:\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi; }

apt_install() {
  say "Installing from Debian: $*"
  if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The Studio demo's Speech tool runs Debian's espeak-ng (a local speech engine) and its pictures write the prompt in
# DejaVu Sans (fonts-dejavu-core). Without them the rest works: Speech tells the member it is not installed, and
# pictures fall back to an ASCII-only font. `ensure_demo_media` installs them; `ensure_demo_media optional` only
# warns when it cannot (a developer without root).
ensure_demo_media() {
  local missing=()
  command -v espeak-ng >/dev/null || missing+=(espeak-ng)
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
  [ ${#missing[@]} = 0 ] && return 0
  if [ "${1:-}" = optional ]; then
    ( apt_install "${missing[@]}" ) || warn "could not install ${missing[*]} for the Studio demo (Speech says it is missing). Install with: sudo apt-get install ${missing[*]}"
  else
    apt_install "${missing[@]}" || die "could not install ${missing[*]} (the Studio demo's speech engine and font): apt-get install ${missing[*]}"
  fi
}

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
