#!/usr/bin/env bash
# Prepares the offline deploy checks of tests/deploy:
#  - the deploy validators (AWS SAM CLI with cfn-lint, checkov) in virtualenvs under .tools/, away
#    from laneway's own environment: these tools pin boto3, pydantic and friends to ranges that
#    would fight the application's dependencies (and each other's, hence two venvs);
#  - the Lambda package's runtime dependencies for this machine's CPU and Python, so that the
#    tests can build a real package and run it under the Lambda Runtime Interface Emulator
#    without touching the network.
# Safe to run again: a venv or cache whose stamp matches is left as it is.
# pipefail: pip's exit status survives the output filter (quiet_pip) below.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
TOOLS_DIR="${LANEWAY_TOOLS_DIR:-.tools}"

# One venv per tool family: sam-cli and checkov each pin a different boto3/botocore range.
SAM_REQS="aws-sam-cli==1.170.0 cfn-lint==1.58.0"
CHECKOV_REQS="checkov==3.3.30"

# Drops pip's per-package notes about index locations that do not exist on this machine.
quiet_pip() { grep -v "is ignored: it is neither a file nor a directory" || true; }

install_venv() {
  local dir="$1" reqs="$2" probe="$3"
  local stamp="$dir/.laneway-stamp"
  if [ -x "$dir/bin/$probe" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ]; then
    echo "== $dir is up to date ($reqs)"
    return 0
  fi
  echo "== installing $reqs into $dir"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | quiet_pip
  # shellcheck disable=SC2086  # the requirement list is meant to split into words
  "$dir/bin/python" -m pip install -q --disable-pip-version-check $reqs 2>&1 | quiet_pip
  "$dir/bin/$probe" --version >/dev/null
  printf '%s' "$reqs" >"$stamp"
}

mkdir -p "$TOOLS_DIR"
install_venv "$TOOLS_DIR/deploy-venv" "$SAM_REQS" sam
install_venv "$TOOLS_DIR/checkov-venv" "$CHECKOV_REQS" checkov

# Runtime dependencies of the Lambda package for this machine (the RIE tests run it here).
case "$(uname -m)" in
  aarch64 | arm64) ARCH=arm64 ;;
  *) ARCH=x86_64 ;;
esac
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"$PY" scripts/build-lambda.py --deps-only --arch "$ARCH" --python "$PYVER" \
  --deps-cache "$TOOLS_DIR/lambda-deps/$ARCH-py$PYVER" 2>&1 | quiet_pip
echo "== deploy tools ready under $TOOLS_DIR"
