#!/usr/bin/env bash
# Set up the environment and run the whole test suite (offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# the HTML report is checked in a real browser: Debian's chromium (skipped, with a note, where it cannot be installed)
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || true
  fi
  command -v chromium >/dev/null || echo "test.sh: chromium is not installed; the browser test of the HTML report will be skipped" >&2
fi
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest -q tests "$@"
