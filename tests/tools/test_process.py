"""`daar process`: dj-process whose outputs appear whole or not at all."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import dj, gone, interruptible, read_rows, recipe, running_with, theme_rows, write_jsonl

pytestmark = pytest.mark.slow  # dj-process in subprocesses

BIN = Path(sys.executable).parent


def run_env() -> dict:
    """The environment subprocesses run in (read at each call: each test has its own score store)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def selection_recipe(tmp_path, bundle, rows: int = 10):
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(rows))
    op = {"bundle_path": str(bundle)}
    scored = {"stats_export_path": str(tmp_path / "out" / "scored.jsonl")}
    process = [{"daar_diversity_score_filter": {**op, **scored}}, {"daar_topk_reward_selector": {**op, "top_ratio": 0.25}}]
    return recipe(tmp_path, pool, process)


def daar_process(config, cwd, *extra) -> subprocess.CompletedProcess:
    command = [str(BIN / "daar"), "process", "--config", str(config), *extra]
    return subprocess.run(command, cwd=cwd, env=run_env(), capture_output=True, text=True, errors="replace", timeout=600)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_outputs_are_those_of_dj_process_and_no_partial_file_is_left(tmp_path, tiny_bundle):
    config = selection_recipe(tmp_path, tiny_bundle)
    result = daar_process(config, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out"
    ours = {name: read_rows(out / name) for name in ("selected.jsonl", "scored.jsonl", "selected_stats.jsonl")}
    assert hidden(out) == [] and len(ours["selected.jsonl"]) == 10 and len(ours["scored.jsonl"]) == 40
    for name in ours:
        (out / name).unlink()
    assert dj("dj-process", config, tmp_path).returncode == 0
    assert {name: read_rows(out / name) for name in ours} == ours  # the same rows as plain dj-process


def test_a_failed_run_leaves_the_previous_outputs_whole(tmp_path, tiny_bundle):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    config = selection_recipe(tmp_path, bundle)
    assert daar_process(config, tmp_path).returncode == 0
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (bundle / "heads.safetensors").write_bytes(b"broken")
    result = daar_process(config, tmp_path)
    assert result.returncode != 0 and "previous outputs were left as they were" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before and hidden(out) == []


def test_a_run_killed_at_any_moment_leaves_a_whole_export(tmp_path, tiny_bundle):
    config = selection_recipe(tmp_path, tiny_bundle, rows=100)
    out = tmp_path / "out"
    assert daar_process(config, tmp_path).returncode == 0
    old = (out / "selected.jsonl").read_bytes()
    child = subprocess.Popen(
        [str(BIN / "daar"), "process", "--config", str(config)],
        cwd=tmp_path,
        env=run_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while child.poll() is None and not any(".partial-" in p.name for p in out.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)  # until Data-Juicer starts writing (the aside names appear)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    now = (out / "selected.jsonl").read_bytes()
    assert now == old or len(now.splitlines()) == 100  # the old export or the new one, whole; never cut short


@pytest.mark.parametrize("case, message", [("export over the input", "is the recipe's input"), ("empty input", "pool.jsonl is empty")])
def test_an_export_over_the_input_or_an_empty_input_is_one_line_before_dj_process_starts(tmp_path, tiny_bundle, case, message):
    config = selection_recipe(tmp_path, tiny_bundle)
    if case == "empty input":  # Data-Juicer's loader fails on it before any op is built (StopIteration, no file named)
        (tmp_path / "pool.jsonl").write_bytes(b"")
    else:
        config.write_text(config.read_text().replace(str(tmp_path / "out" / "selected.jsonl"), str(tmp_path / "pool.jsonl")))
    pool = (tmp_path / "pool.jsonl").read_bytes()
    result = daar_process(config, tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("daar: error:")]
    assert result.returncode == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr
    assert (tmp_path / "pool.jsonl").read_bytes() == pool


def test_a_dataset_path_override_naming_the_export_is_refused_before_dj_process_starts(tmp_path, tiny_bundle):
    config = selection_recipe(tmp_path, tiny_bundle)
    (tmp_path / "out").mkdir()
    export = write_jsonl(tmp_path / "out" / "selected.jsonl", theme_rows(10))
    before = export.read_bytes()
    result = daar_process(config, tmp_path, "--dataset_path", str(export))
    errors = [line for line in result.stderr.splitlines() if line.startswith("daar: error:")]
    assert result.returncode == 2 and len(errors) == 1 and "is the recipe's input" in errors[0]
    assert export.read_bytes() == before


def test_a_rerun_of_daar_process_does_not_tell_the_user_to_use_daar_process(tmp_path, tiny_bundle):
    config = selection_recipe(tmp_path, tiny_bundle)
    first, second = daar_process(config, tmp_path), daar_process(config, tmp_path)
    assert first.returncode == second.returncode == 0
    assert (tmp_path / "out" / "selected.jsonl").is_file() and "rewrites" not in second.stdout + second.stderr


def start_until_scoring(command: list[str], cwd: Path) -> subprocess.Popen:
    """Start ``command`` (its output to a file, so nothing blocks on a pipe) and return once a DaaR
    op has scored its first batch."""
    log = (cwd / "run.log").open("w")
    child = subprocess.Popen(command, cwd=cwd, env=run_env(), stdout=log, stderr=subprocess.STDOUT, preexec_fn=interruptible)
    deadline = time.monotonic() + 300
    while "backbone embedded" not in (cwd / "run.log").read_text(errors="replace"):
        assert child.poll() is None and time.monotonic() < deadline, f"{command} ended before scoring"
        time.sleep(0.05)
    return child


def long_recipe(tmp_path, tiny_bundle) -> Path:
    """A run of many small batches over two workers: still scoring a while after its first batch."""
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(1000))
    op = {"bundle_path": str(tiny_bundle), "batch_size": 5}
    return recipe(tmp_path, pool, [{"daar_domain_probe_mapper": op}, {"daar_diversity_score_filter": op}], np=2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_killed_daar_process_leaves_no_process_and_no_partial_file(tmp_path, tiny_bundle, sig):
    config = long_recipe(tmp_path, tiny_bundle)
    child = start_until_scoring([str(BIN / "daar"), "process", "--config", str(config)], tmp_path)
    child.send_signal(sig)
    rc = child.wait(timeout=120)
    assert rc != 0
    assert gone(str(tmp_path)), f"left running: {running_with(str(tmp_path))}"  # dj-process and its workers too
    if sig != signal.SIGKILL:  # passed on to dj-process; the run ends as a failure and removes what it wrote aside
        assert hidden(tmp_path / "out") == [] if (tmp_path / "out").exists() else True
    # a later run removes whatever a killed one left aside, and writes its own outputs whole
    assert daar_process(config, tmp_path).returncode == 0
    assert hidden(tmp_path / "out") == [] and len(read_rows(tmp_path / "out" / "selected.jsonl")) == 4000


def test_workers_die_with_a_killed_dj_process(tmp_path, tiny_bundle):
    config = long_recipe(tmp_path, tiny_bundle)
    child = start_until_scoring([str(BIN / "dj-process"), "--config", str(config)], tmp_path)
    workers = [pid for pid in running_with(str(config)) if pid != child.pid]
    assert workers, "expected the op's worker processes"
    child.kill()
    child.wait()
    assert gone(str(config)), f"workers left running: {running_with(str(config))}"
