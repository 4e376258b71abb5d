#!/usr/bin/env bash
# Starts laneway on examples/config.yaml (mock deployments: no API key, no cloud, no Redis)
# at http://localhost:4000. Extra arguments go to `laneway` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/laneway --config examples/config.yaml --port 4000 "$@"
