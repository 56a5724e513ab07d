"""What the tests share besides fixtures: real JSONL files, recipes, ``dj-process`` runs in a
subprocess, in-process op runs, and the rows no op may lose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import yaml
from data_juicer.core.data import NestedDataset
from tiny import THEMES, build_tiny_model, theme_rows  # noqa: F401  (re-exported: one import line per test module)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def recipe(tmp_path: Path, pool, process: list, **extra) -> Path:
    """A Data-Juicer recipe over ``pool`` (one worker) exporting to ``tmp_path/out/selected.jsonl``."""
    config = {
        "project_name": "daar-test",
        **({"dataset_path": str(pool)} if pool is not None else {}),
        "export_path": str(tmp_path / "out" / "selected.jsonl"),
        "text_keys": "instruction",
        "np": 1,
        "process": process,
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


#: what Ray's core prints when it aborts on one of its own internal checks: a race in its task
#: manager ended one CI run of a Ray recipe this way while Data-Juicer counted the input rows, before
#: any op of ours ran. Such a run (never one with a fault a test injects) is run once more.
RAY_OWN_CRASH = "You have likely discovered a bug in Ray"


def dj(tool: str, config: Path, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``dj-process`` or ``dj-analyze`` on a recipe, offline (``env``: the whole environment, if
    given); once more if Ray aborted on its own internal check (``RAY_OWN_CRASH``)."""
    for attempt in range(2):
        done = subprocess.run(
            [str(Path(sys.executable).parent / tool), "--config", str(config)],
            cwd=cwd,
            env=env or {**os.environ, "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
        if done.returncode == 0 or RAY_OWN_CRASH not in done.stdout + done.stderr or attempt:
            return done
        warnings.warn(f"Ray aborted on an internal check; running {config.name} once more", stacklevel=2)


#: rows no op may lose: empty and None fields, a huge text, odd unicode, a chat row among Alpaca ones
HOSTILE = [
    {"id": "none-fields", "instruction": "", "input": None, "output": None},
    {"id": "empty", "instruction": "", "input": "", "output": ""},
    {"id": "huge", "instruction": "huge " * 50000, "input": "", "output": "y"},
    {"id": "odd-unicode", "instruction": "数学 🧮 ｘ＝２？ \u200b é\u0301", "input": "", "output": "\x00"},
    {"id": "messages-row", "instruction": None, "output": None, "messages": [{"role": "user", "content": "Why carry umbrellas?"}]},
]


def dataset(rows):
    columns = list(dict.fromkeys(k for r in rows for k in r))  # from_list reads columns off row 0 only
    return NestedDataset.from_list([{k: r.get(k) for k in columns} for r in rows])


def run_ops(ops, rows):
    ds = dataset(rows)
    for op in ops:
        ds = op.run(ds)
    return ds


def running_with(marker: str) -> list[int]:
    """PIDs of live processes whose command line holds ``marker`` (zombies aside)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def gone(marker: str, seconds: float = 3) -> bool:
    """Whether every process with ``marker`` in its command line ends within ``seconds`` (the run
    itself would go on for much longer)."""
    deadline = time.monotonic() + seconds
    while running_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not running_with(marker)


def embedded(log: str) -> int:
    return sum(int(n) for n in re.findall(r"backbone embedded (\d+) samples", log))


def run_until_killed(cmd: list[str], cwd: Path, env: dict, lines: int) -> str:
    """Run ``cmd`` until it printed ``lines`` progress lines of the mapper, then SIGKILL it; its output."""
    log = cwd / "killed.log"
    with log.open("w") as out:
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while len(re.findall(r"daar_domain_probe_mapper: [\d,]+ of [\d,]+ rows \(", log.read_text(errors="replace"))) < lines:
            assert child.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.05)
        child.kill()
        child.wait()
    return log.read_text(errors="replace")


def interruptible() -> None:
    """``preexec_fn`` for a child a test sends SIGINT: a suite run as a background job starts with
    SIGINT ignored, and an ignored signal stays ignored in every child (no KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
