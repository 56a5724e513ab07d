#!/usr/bin/env bash
# The CUDA path on a GPU machine: bf16-vs-fp32 agreement on the demo corpus and the samples/s and
# peak memory of a 7B-shaped truncated backbone (see benchmarks/gpu_check.py). Sets up .venv when
# it is missing (choose the CUDA torch build with DAAR_TORCH, see scripts/setup_env.sh).
# Without CUDA it says so in one line and exits with status 3.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
exec python -m benchmarks.gpu_check "$@"
