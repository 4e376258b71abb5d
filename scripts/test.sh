#!/usr/bin/env bash
# Installs everything the test suite needs (redis-server, chromium, the deploy validators,
# laneway with its test extras in .venv) and runs the whole suite.
# Safe to run again: installed pieces are skipped. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
fi
# tests/ui drive the dashboard in Debian's chromium (through Playwright's Python package; no
# browser is ever downloaded by `playwright install`).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "== installing chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

bash scripts/bootstrap.sh test
bash scripts/install-deploy-tools.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff, mypy"
ruff check router handler tests bench
mypy router handler

echo "== pytest"
python -m pytest -q -p no:cacheprovider "$@"
