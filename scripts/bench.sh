#!/usr/bin/env bash
# Run one benchmark from a fresh clone: bash scripts/bench.sh NAME [ARGS...]
# NAME is a script of benchmarks/ (scoring_speed, training_speed, selection_quality,
# downstream_proxy, ray_speed); results land in benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-}"
if [[ -z "$name" || ! -f "benchmarks/$name.py" || "$name" == common || "$name" == peers || "$name" == labelled_pool ]]; then
  echo "usage: bash scripts/bench.sh NAME [ARGS...]; NAME one of: scoring_speed training_speed selection_quality downstream_proxy ray_speed" >&2
  exit 2
fi
shift
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
exec python "benchmarks/$name.py" "$@"
