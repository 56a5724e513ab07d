"""A million-row pool through ``dj-process``: a whole run, and a run killed at about half and resumed.

The tiny random model of the tests stands in for the backbone (so the pool's size, not the model,
sets the cost). The recipe is the shipped one's three ops (mapper, filter, selector ``balanced +
coverage``, 10 %) over two workers. Each cell is one (rows, kind) pair and one result file under
``results/million_rows/``; a rerun skips the cells that are done.

* ``whole``: a fresh score store, one uninterrupted run.
* ``builtin``: Data-Juicer's own ``text_length_filter`` and ``random_selector`` over the same pool:
  the driver memory Data-Juicer itself needs for it, against which ours is read.
* ``killed``: a fresh store, ``kill -9`` of ``dj-process`` once the mapper's progress line passes half
  the rows, then the same command again. Reports the rows scored twice (scored in the killed run
  but not kept), both wall times, and whether the selection equals the whole run's.

Memory is sampled every 0.25 s from ``/proc``: the driver (``dj-process``) and each worker, as
resident anonymous memory (``RssAnon``: the heap; the dataset's memory-mapped Arrow files are
file-backed and shared) and as the whole resident set.

Usage: python -m benchmarks.million_rows [--rows 100000,1000000] [--kinds whole,killed] [--dtype float32|bfloat16]
       [--executor default|ray] [--report]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from loguru import logger

from benchmarks.common import OUT, RESULTS, machine
from data_juicer_daar.options import int_list

WORK = OUT / "million_rows"
CELLS = RESULTS / "million_rows"
BIN = Path(sys.executable).parent


def setup() -> Path:
    """The tiny model and a bundle trained on it (built once)."""
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig
    from tests.tiny import build_tiny_model, theme_rows

    bundle = WORK / "bundle"
    if not (bundle / "manifest.json").is_file():
        model = build_tiny_model(WORK / "model")
        config = TrainConfig(model=str(model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=30), folds=3)
        DaarTrainer(config).fit(theme_rows(30)).save(bundle)
    return bundle


def pool(rows: int) -> Path:
    from tests.tiny import theme_rows

    path = WORK / f"pool_{rows}.jsonl"
    if not path.is_file():
        aside = path.with_suffix(".partial")
        with aside.open("w", encoding="utf-8") as fh:
            for row in theme_rows(rows // 4):
                fh.write(json.dumps(row) + "\n")
        aside.rename(path)
    return path


def recipe(rows: int, bundle: Path, work: Path, dtype: str = "float32", builtin: bool = False, ray: bool = False) -> Path:
    """The three ops over the pool; ``builtin``: Data-Juicer's own mapper-free pair instead (a length
    filter and its random selector), whose driver memory is Data-Juicer's own cost of the pool;
    ``ray``: under the Ray executor (a local Ray started by the run), the Ray selector, a folder export."""
    op = {"bundle_path": str(bundle), "model_dtype": dtype}
    selector = "daar_topk_reward_ray_selector" if ray else "daar_topk_reward_selector"
    ours = [
        {"daar_domain_probe_mapper": op},
        {"daar_diversity_score_filter": op},
        {selector: {**op, "top_ratio": 0.1, "mode": "balanced", "coverage": True}},
    ]
    theirs = [{"text_length_filter": {"min_len": 1, "max_len": 100000}}, {"random_selector": {"select_ratio": 0.1}}]
    executor = {"executor_type": "ray", "ray_address": "local"} if ray else {"np": 2}
    config = {
        "project_name": "million",
        "dataset_path": str(pool(rows)),
        "export_path": str(work / ("selected" if ray else "selected.jsonl")),
        "text_keys": "instruction",
        "use_cache": False,
        "process": theirs if builtin else ours,
        **executor,
    }
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _status(pid: int) -> dict[str, int]:
    """RssAnon and VmRSS of ``pid`` in bytes (empty once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v.split()[0]) * 1024 for k, v in re.findall(r"^(RssAnon|VmRSS):\s+(.+)$", text, re.M)}


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Ray's workers are its raylet's children, not the driver's)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry.name)] = int(fields[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        out += below
        frontier = below
    return out


def _command(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}") / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Sampler:
    """Peak memory of a process and of its largest child, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, {"driver_anon": 0, "driver_rss": 0, "worker_anon": 0, "worker_rss": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            own = _status(self.pid)
            self.peak["driver_anon"] = max(self.peak["driver_anon"], own.get("RssAnon", 0))
            self.peak["driver_rss"] = max(self.peak["driver_rss"], own.get("VmRSS", 0))
            for child in _descendants(self.pid):
                st = _status(child)
                self.peak["worker_anon"] = max(self.peak["worker_anon"], st.get("RssAnon", 0))
                self.peak["worker_rss"] = max(self.peak["worker_rss"], st.get("VmRSS", 0))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {k: v / 2**20 for k, v in self.peak.items()}  # MiB


def run(config: Path, env: dict, kill_at: int | None = None) -> dict:
    """Run ``dj-process`` on ``config``; with ``kill_at``, SIGKILL it once the mapper reports that many rows."""
    log_path = config.parent / ("killed.log" if kill_at else "run.log")
    t = time.perf_counter()
    with log_path.open("w") as log:
        child = subprocess.Popen([str(BIN / "dj-process"), "--config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = Sampler(child.pid)
        while child.poll() is None:
            time.sleep(0.5)
            if kill_at:
                seen = [
                    int(n.replace(",", ""))
                    for n in re.findall(r"daar_domain_probe_mapper: ([\d,]+) of", log_path.read_text(errors="replace"))
                ]
                if seen and seen[-1] >= kill_at:
                    below = _descendants(child.pid)
                    child.send_signal(signal.SIGKILL)
                    child.wait()
                    break
    wall = time.perf_counter() - t
    if kill_at:
        time.sleep(10)  # what dies with the driver is gone by now
    left = [pid for pid in below if _alive(pid)] if kill_at else []
    left_commands = [_command(pid) for pid in left]
    memory = sampler.stop()
    text = log_path.read_text(errors="replace")
    if not kill_at and child.returncode != 0:
        raise SystemExit(f"dj-process failed ({child.returncode}):\n{text[-3000:]}")
    embedded = sum(int(n) for n in re.findall(r"backbone embedded (\d+) samples", text))
    return {"wall_s": wall, "embedded": embedded, "rc": child.returncode, "left": len(left), "left_commands": left_commands, **memory}


def selection_digest(work: Path) -> str:
    """A digest of the selected ids (in order; sorted for a Ray folder export, whose shards are
    numbered in the order they finished)."""
    export = work / "selected.jsonl"
    files = [export] if export.is_file() else sorted((work / "selected").glob("*.json*"))
    ids = [json.loads(line)["id"] for f in files for line in f.read_text().splitlines() if line.strip()]
    ids = ids if export.is_file() else sorted(ids)
    (work / "selected_ids.txt").write_text("\n".join(ids) + "\n")  # kept to count the rows two selections differ in
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] + f" ({len(ids)} rows)"


def cell(rows: int, kind: str, bundle: Path, dtype: str, ray: bool = False) -> dict:
    work = WORK / f"{kind}_{rows}_{dtype}{'_ray' if ray else ''}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # (RAY_DEDUP_LOGS=0: Ray would fold the workers' repeated "backbone embedded" lines, which count the rows scored)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DAAR_SCORE_STORE": str(work / "store"),
        "DAAR_PROGRESS_SECONDS": "5",
        "RAY_DEDUP_LOGS": "0",
    }
    config = recipe(rows, bundle, work, dtype, builtin=kind == "builtin", ray=ray)
    if kind in ("whole", "builtin"):
        out = run(config, env)
        return {**out, "selection": selection_digest(work)}
    from data_juicer_daar.dj.score_store import summarize

    first = run(config, env, kill_at=rows // 2)
    kept = sum(t.rows for t in summarize(work / "store"))
    second = run(config, env)
    return {
        "killed_run": first,
        "resumed_run": second,
        "stored_when_killed": kept,
        # from the log lines; under Ray the lines still on their way to the driver are lost with it
        "rows_scored_twice": None if ray else first["embedded"] + second["embedded"] - rows,
        "processes_left_after_kill": first["left"],
        "selection": selection_digest(work),
    }


def suffix(dtype: str, executor: str) -> str:
    """The part of a cell's name after (rows, run): nothing for float32 on the default executor."""
    return "".join(f"-{v}" for v in (dtype, executor) if v not in ("float32", "default"))


def report() -> None:
    """The measured table from the cells present (markdown, for benchmarks/README.md)."""
    cells = {p.stem: json.loads(p.read_text()) for p in sorted(CELLS.glob("*.json"))}
    print("| rows | run | wall s | rows scored | scored twice | driver RssAnon MiB | driver RSS MiB | worker RssAnon MiB | selection |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for c in sorted(cells.values(), key=lambda c: (c["rows"], c.get("executor", "default"), c["kind"])):
        whole = cells.get(f"{c['rows']}-whole" + suffix(c.get("dtype", "float32"), c.get("executor", "default")))
        runs = [("killed at half", c["killed_run"]), ("resumed", c["resumed_run"])] if "killed_run" in c else [(c["kind"], c)]
        same = "" if c["kind"] != "killed" or whole is None else ("= whole" if whole["selection"] == c["selection"] else "differs")
        fmt = "".join(f" ({v})" for v in (c.get("dtype", "float32"), c.get("executor", "default")) if v not in ("float32", "default"))
        for label, r in runs:
            twice = c.get("rows_scored_twice", "") if label == "resumed" else ""
            twice = "n/a" if twice is None else twice
            print(
                f"| {c['rows']:,} | {label}{fmt} | {r['wall_s']:.0f} | "
                f"{r['embedded']:,} | {twice} | {r['driver_anon']:.0f} | {r['driver_rss']:.0f} | {r['worker_anon']:.0f} | "
                f"{same if label == 'resumed' else ''} |"
            )


def kinds(value: str) -> list[str]:
    out = value.split(",")
    if set(out) - {"whole", "killed", "builtin"}:
        raise ValueError(value)  # argparse: one usage line
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int_list, default=[100000, 1000000], help="pool sizes, comma-separated")
    parser.add_argument("--kinds", type=kinds, default=["whole", "killed"], help="whole, killed, builtin (comma-separated)")
    parser.add_argument("--executor", default="default", choices=("default", "ray"), help="Data-Juicer's executor")
    parser.add_argument("--report", action="store_true", help="print the table of the cells present and stop")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="the backbone's number format")
    args = parser.parse_args()
    if args.report:
        report()
        return
    WORK.mkdir(parents=True, exist_ok=True)
    CELLS.mkdir(parents=True, exist_ok=True)
    bundle = setup()
    for rows in args.rows:
        for kind in args.kinds:
            path = CELLS / f"{rows}-{kind}{suffix(args.dtype, args.executor)}.json"
            if path.is_file():
                logger.info(f"{path.name} done")
                continue
            logger.info(f"million_rows: {kind} run of {rows:,} rows")
            result = {
                "rows": rows,
                "kind": kind,
                "dtype": args.dtype,
                "executor": args.executor,
                "machine": machine(),
                **cell(rows, kind, bundle, args.dtype, ray=args.executor == "ray"),
            }
            path.write_text(json.dumps(result, indent=1))
            logger.info(f"{path.name}: {json.dumps(result)}")


if __name__ == "__main__":
    main()
