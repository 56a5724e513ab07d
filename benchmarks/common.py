"""What every benchmark needs: the demo corpus, a trained demo bundle, a place for results."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
BUNDLE = ROOT / "outputs" / "demo" / "probe"  # written by scripts/demo.sh (or trained here)


def demo_path() -> Path:
    from data_juicer_daar.demo import demo_corpus

    return demo_corpus()


def demo_rows() -> list[dict]:
    from data_juicer_daar.corpus import read_jsonl

    return read_jsonl(demo_path())


def demo_bundle() -> Path:
    """The demo bundle; trained with all defaults when absent."""
    if not (BUNDLE / "manifest.json").is_file():
        run_checked([sys.executable, "-m", "data_juicer_daar.cli", "train", "--corpus", str(demo_path()), "--out", str(BUNDLE)])
    return BUNDLE


def run_checked(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, **kw)


def measure(cmd: list[str], cwd: Path | None = None) -> tuple[str, float]:
    """Run ``cmd``; return its stdout+stderr and its peak RSS in MiB (process and waited children)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    return output, usage.ru_maxrss / 1024


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def machine() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {resource.getpagesize() and os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM, Python {platform.python_version()}"
