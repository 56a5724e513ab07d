#!/usr/bin/env bash
# The main job on the embedded default: demo corpus -> daar train -> dj-process (through daar process) -> daar report.
# Everything lands in outputs/demo/; safe to run again (synthesis and the model cache are reused).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
out=outputs/demo
mkdir -p "$out"
start=$(date +%s)
daar demo-corpus --out "$out/demo_corpus.jsonl"
daar model prepare
daar train --corpus "$out/demo_corpus.jsonl" --out "$out/probe"
t0=$(date +%s.%N)
# daar process: dj-process with its outputs written aside and renamed when whole (a rerun killed midway keeps the last ones)
daar process --config recipes/daar_select.yaml > "$out/dj-process.log" 2>&1 || { tail -n 30 "$out/dj-process.log"; exit 1; }
t1=$(date +%s.%N)
n=$(wc -l < "$out/demo_corpus.jsonl")
python3 -c "print(f'dj-process scored and selected $n samples in {$t1 - $t0:.1f} s ({$n / ($t1 - $t0):.1f} samples/s, start-up included)')"
daar report --recipe recipes/daar_select.yaml --out "$out/report" --id-key id   # its pool, selection and bundle are the recipe's
echo "selection: $out/selected.jsonl   report: $out/report/report.html   total: $(( $(date +%s) - start )) s"
