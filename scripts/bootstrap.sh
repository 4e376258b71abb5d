#!/usr/bin/env bash
# Creates (or refreshes) the project's virtualenv in .venv and installs laneway into it.
#   scripts/bootstrap.sh          runtime only
#   scripts/bootstrap.sh test     with the test dependencies
# Sourced by serve.sh and test.sh; works on a fresh Debian machine (Python 3.11+, root): a
# virtualenv keeps clear of Debian's externally-managed system Python.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY="${PYTHON:-python3}"
VENV="${LANEWAY_VENV:-.venv}"
EXTRA="${1:-}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "laneway needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "== installing python3-venv"
  apt_install python3-venv
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PY" -m venv "$VENV"
fi
spec="."
[ -n "$EXTRA" ] && spec=".[$EXTRA]"
stamp="$VENV/.laneway-stamp"
want="$EXTRA $(cat pyproject.toml | cksum)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== installing laneway ${EXTRA:+with $EXTRA dependencies }into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec"
  printf '%s' "$want" >"$stamp"
fi
