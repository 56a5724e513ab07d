#!/usr/bin/env bash
# Run one benchmark from a fresh clone: bash scripts/bench.sh NAME [ARGS...]
# NAME is a runnable script of benchmarks/ (the usage line lists them); results land in
# benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-}"
names=$(grep -l '^if __name__ == "__main__":' benchmarks/*.py | xargs -n1 basename | sed 's/\.py$//' | tr '\n' ' ')
if [[ -z "$name" || " $names" != *" $name "* ]]; then
  echo "usage: bash scripts/bench.sh NAME [ARGS...]; NAME one of: $names" >&2
  exit 2
fi
shift
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
exec python -m "benchmarks.$name" "$@"
