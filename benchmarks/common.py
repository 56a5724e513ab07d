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


def ratio(text: str) -> float:
    """argparse type: a fraction in (0, 1]."""
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(f"must be in (0, 1], got {value}")
    return value


def demo_path() -> Path:
    from data_juicer_daar.tools.demo import demo_corpus

    return demo_corpus()


def demo_rows() -> list[dict]:
    from data_juicer_daar.method.corpus import read_jsonl

    return read_jsonl(demo_path())


def demo_bundle() -> Path:
    """The demo bundle; trained with all defaults when absent."""
    if not (BUNDLE / "manifest.json").is_file():
        run_checked([sys.executable, "-m", "data_juicer_daar.tools.cli", "train", "--corpus", str(demo_path()), "--out", str(BUNDLE)])
    return BUNDLE


def run_checked(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, **kw)


def measure(cmd: list[str], cwd: Path | None = None) -> tuple[str, float]:
    """Run ``cmd``; return its stdout+stderr and its peak RSS in MiB (process and waited children)."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
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

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores ({cpu_features()}), "
        f"{resource.getpagesize() and os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM, Python "
        f"{platform.python_version()}"
    )


def cpu_features() -> str:
    """The CPU flags that decide the fastest number format."""
    from data_juicer_daar.method.backbone import cpu_flags

    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "asimd", "bf16")
    return " ".join(f for f in wanted if f in flags) or ("CPU flags unknown" if not flags else "none of avx2/avx512/bf16")


def run_recipe(recipe_name: str, work: Path, dataset: Path, bundle: Path | str, op_params: dict | None = None, **overrides) -> dict:
    """Run a shipped recipe through `dj-process` on ``dataset`` with ``bundle`` (no cache, no stats
    export; ``op_params``: settings for every op, e.g. ``model_dtype``; ``overrides``: other top-level
    settings, e.g. ``ray_address``) in a fresh ``work`` folder; returns wall time, per-op times, peak
    RSS and the log."""
    import re
    import shutil
    import time

    import yaml

    shutil.rmtree(work, ignore_errors=True)  # Ray appends shards to an existing export folder
    work.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "recipes" / recipe_name).read_text())
    config.update(dataset_path=str(dataset), export_path=str(work / "selected.jsonl"), use_cache=False, **overrides)
    for op in config["process"]:
        params = next(iter(op.values()))
        params["bundle_path"] = str(bundle)
        params.pop("stats_export_path", None)
        params.update(op_params or {})
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config))
    t = time.perf_counter()
    log, rss = measure([str(Path(sys.executable).parent / "dj-process"), "--config", str(recipe)], cwd=work)
    wall = time.perf_counter() - t
    ops = {m.group(1): float(m.group(2)) for m in re.finditer(r"OP \[(\w+)\] Done in ([\d.]+)s", log)}
    return {"wall_s": wall, "ops_s": ops, "peak_rss_mib": rss, "log": log}
