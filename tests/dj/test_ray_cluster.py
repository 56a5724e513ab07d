"""The Ray recipe on a real multi-node cluster (Ray's own ``cluster_utils.Cluster``: a head and two
worker nodes, each its own raylet), and the faults a cluster has: a node removed while rows are
scored, a Ray worker killed mid-task, a node lost while the selector filters rows where they live,
the head gone. Each run ends with the default executor's selection or fails without an export."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import psutil
import pytest
import yaml
from helpers import RAY_OWN_CRASH, theme_rows, write_jsonl

BIN = Path(sys.executable).parent


def run_env() -> dict:
    """The environment subprocesses run in (read at each call: each test has its own score store)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_DEDUP_LOGS": "0"}


SHARDS, ROWS_PER_SHARD = 6, 1000
pytestmark = pytest.mark.slow  # Ray clusters and dj-process in subprocesses
SELECT = {"top_ratio": 0.2, "mode": "balanced", "coverage": True}  # the shipped recipe's selection


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """A pool of 6,000 rows in six JSONL shards: one read task each, so the rows spread over the nodes."""
    folder = tmp_path_factory.mktemp("pool") / "shards"
    folder.mkdir()
    rows = theme_rows(SHARDS * ROWS_PER_SHARD // 4)
    for i in range(SHARDS):
        write_jsonl(folder / f"part-{i}.jsonl", rows[i * ROWS_PER_SHARD : (i + 1) * ROWS_PER_SHARD])
    return folder


@pytest.fixture
def cluster():
    """A head and two worker nodes, two logical CPUs each, on this machine."""
    import signal

    from ray.cluster_utils import Cluster

    sigterm = signal.getsignal(signal.SIGTERM)  # the head node installs its own SIGTERM handler in this process
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    signal.signal(signal.SIGTERM, sigterm)  # later tests fork workers: they must not inherit the node's handler
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    cluster.workers = workers
    yield cluster
    try:
        cluster.shutdown()
    except Exception:  # the head test removes the head itself
        pass


def recipe(tmp_path: Path, name: str, pool: Path, bundle: Path, address: str | None) -> tuple[Path, Path]:
    """The shipped Ray recipe's three ops (or the default executor's) over ``pool``; batches of 250
    rows so that every shard makes several tasks."""
    ray = address is not None
    selector = "daar_topk_reward_ray_selector" if ray else "daar_topk_reward_selector"
    # float32: the runs are compared row for row with the default executor, and bfloat16 rounds by
    # batch shape (Ray batches rows differently; docs/ops.md, number format)
    op = {"bundle_path": str(bundle), "model_dtype": "float32"}
    process = [
        {"daar_domain_probe_mapper": {**op, "batch_size": 250}},
        {"daar_diversity_score_filter": {**op, "batch_size": 250}},
        {selector: {**op, **SELECT}},
    ]
    export = tmp_path / f"{name}-out" / "selected.jsonl"
    config = {
        "project_name": name,
        "dataset_path": str(pool),
        "export_path": str(export),
        "text_keys": "instruction",
        "np": 1,
        "process": process,
        **({"executor_type": "ray", "ray_address": address} if ray else {}),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, export


def exported(path: Path) -> list[dict]:
    files = [path] if path.is_file() else sorted(p for p in path.glob("*.json*") if p.is_file()) if path.exists() else []
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def run(config: Path, fault=None, timeout: float = 600) -> tuple[int, str, bool]:
    """Run ``dj-process``; ``fault(log_lines)`` is polled while it runs and returns True once it has
    struck. Returns the exit code, the log and whether the fault struck before the run ended.

    A run without a fault that Ray's core aborts on one of its own internal checks is run once more
    (``helpers.RAY_OWN_CRASH``): that crash is Ray's, not the recipe's. It must leave no export."""
    rc, log, struck = run_once(config, fault, timeout)
    if fault is None and rc != 0 and RAY_OWN_CRASH in log:
        warnings.warn(f"Ray aborted on an internal check; running {config.name} once more", stacklevel=2)
        assert exported(config.parent / f"{config.stem}-out" / "selected.jsonl") == []
        rc, log, struck = run_once(config, fault, timeout)
    return rc, log, struck


def run_once(config: Path, fault, timeout: float) -> tuple[int, str, bool]:
    proc = subprocess.Popen(
        [str(BIN / "dj-process"), "--config", str(config)],
        cwd=config.parent,
        env=run_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    struck, start = fault is None, time.monotonic()
    while proc.poll() is None and time.monotonic() - start < timeout:
        if not struck:
            struck = bool(fault(lines))
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    reader.join(timeout=30)
    return proc.returncode, "".join(lines), struck


def scoring_tasks() -> list[psutil.Process]:
    """Ray worker processes running a map task (Ray names them after the task)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if " ".join(p.info["cmdline"] or []).startswith("ray::MapBatches"):
                found.append(p)
        except psutil.Error:
            continue
    return found


def runs_under(node, process: psutil.Process) -> bool:
    raylet = node.all_processes["raylet"][0].process.pid
    try:
        return any(parent.pid == raylet for parent in process.parents())
    except psutil.Error:
        return False


def rows_per_node(log: str) -> Counter:
    found = re.findall(r"daar_domain_probe_mapper: backbone embedded (\d+) samples .* on Ray node (\w+)", log)
    per_node: Counter = Counter()
    for n, node in found:
        per_node[node] += int(n)
    return per_node


@pytest.fixture(scope="module")
def expected(tmp_path_factory, shards, tiny_bundle) -> list[str]:
    """The default executor's selection (ids, in its order)."""
    tmp = tmp_path_factory.mktemp("default")
    config, export = recipe(tmp, "default", shards, tiny_bundle, None)
    rc, log, _ = run(config)
    assert rc == 0, log[-3000:]
    ids = [r["id"] for r in exported(export)]
    assert len(ids) == SHARDS * ROWS_PER_SHARD // 5
    return ids


def assert_same_selection(rows: list[dict], expected: list[str], ordered: bool = True) -> None:
    """Same ids; with ``ordered``, within each shard the same order (the executors list a folder's
    files in different orders). After a fault, Ray reruns tasks and may cut and number the blocks
    differently, so only the set is compared (docs/ray.md: sort by an id field when the order matters)."""
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(expected)
    if not ordered:
        return
    shard = {r["id"]: i // ROWS_PER_SHARD for i, r in enumerate(theme_rows(SHARDS * ROWS_PER_SHARD // 4))}
    for s in range(SHARDS):
        assert [i for i in ids if shard[i] == s] == [i for i in expected if shard[i] == s]


def test_cluster_selects_what_the_default_executor_selects(cluster, shards, tiny_bundle, expected, tmp_path):
    config, export = recipe(tmp_path, "ray", shards, tiny_bundle, cluster.address)
    rc, log, _ = run(config)
    assert rc == 0, log[-3000:]
    assert_same_selection(exported(export), expected)
    per_node = rows_per_node(log)
    assert sum(per_node.values()) == SHARDS * ROWS_PER_SHARD  # each row scored once: the filter reused the mapper's values
    assert len(per_node) >= 2, per_node  # scored on more than one node
    assert "gathering the probe_entropy score, domain and sub-domain of 6000 rows on the driver" in log


def test_worker_node_removed_while_scoring(cluster, shards, tiny_bundle, expected, tmp_path):
    config, export = recipe(tmp_path, "node", shards, tiny_bundle, cluster.address)
    doomed = cluster.workers[1]

    def remove_node(_lines):
        if any(runs_under(doomed, p) for p in scoring_tasks()):
            cluster.remove_node(doomed)
            return True
        return False

    rc, log, struck = run(config, remove_node)
    assert struck, "the node was never removed while a scoring task ran on it"
    assert rc == 0, log[-3000:]
    assert_same_selection(exported(export), expected, ordered=False)  # Ray retried the lost tasks on the other nodes


def test_ray_worker_killed_mid_task(cluster, shards, tiny_bundle, expected, tmp_path):
    config, export = recipe(tmp_path, "kill", shards, tiny_bundle, cluster.address)

    def kill_worker(_lines):
        for task in scoring_tasks():
            os.kill(task.pid, signal.SIGKILL)
            return True
        return False

    rc, log, struck = run(config, kill_worker)
    assert struck
    assert rc == 0, log[-3000:]
    assert "will be retried" in log  # Ray saw the dead worker and ran its task again
    assert_same_selection(exported(export), expected, ordered=False)


def test_node_lost_while_the_selector_filters(cluster, shards, tiny_bundle, expected, tmp_path):
    config, export = recipe(tmp_path, "select", shards, tiny_bundle, cluster.address)

    def remove_node(lines):
        if any("daar_topk_reward_ray_selector: gathering" in line for line in lines):
            cluster.remove_node(cluster.workers[1])
            return True
        return False

    rc, log, struck = run(config, remove_node)
    assert struck
    print(f"selector fault: exit {rc}")
    if rc == 0:  # Ray rebuilt the lost blocks from their lineage (the upstream ops are deterministic)
        assert_same_selection(exported(export), expected, ordered=False)
    else:
        assert exported(export) == []


def test_head_gone_mid_run_fails_without_export(cluster, shards, tiny_bundle, tmp_path):
    config, export = recipe(tmp_path, "head", shards, tiny_bundle, cluster.address)

    def remove_head(lines):
        if any("backbone embedded" in line for line in lines):
            cluster.remove_node(cluster.head_node)
            return True
        return False

    rc, log, struck = run(config, remove_head, timeout=300)
    assert struck
    assert rc != 0
    assert exported(export) == []  # never exit 0 with fewer rows
    # the driver ran on the head here, so Ray ended it at once (its object store went with the head);
    # a driver elsewhere outlives the head and says so in one line (test_driver_says_when_the_head_is_gone)


def test_driver_says_when_the_head_is_gone(tmp_path):
    """The watch the ops start in a Ray driver: a port that stops answering ends the process with one line."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    code = (
        "import time; from data_juicer_daar.dj.ray_watch import watch_address; "
        f"watch_address('127.0.0.1', {port}, 'op'); print('watching', flush=True); time.sleep(60); print('still here')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    assert proc.stdout.readline().strip() == "watching"
    time.sleep(1.0)
    assert proc.poll() is None  # alive while the head answers
    server.close()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "still here" not in out
    said = [line for line in err.splitlines() if line.startswith("op: the Ray head at 127.0.0.1")]
    assert said and said[-1].endswith("so the run stops here (any export it began is incomplete): rerun once the head is back"), err


def test_the_head_watch_starts_in_a_driver_that_joined_and_can_be_turned_off(cluster, tiny_bundle):
    """Building an op in a Ray driver that joined a cluster runs its preflight there, which starts the
    head watch; ``watch_ray_head: false`` on the op, or ``DAAR_WATCH_RAY_HEAD=0``, leaves it off."""
    code = (
        "import sys, threading, ray; from data_juicer_daar.ops import DaarDomainProbeMapper; "
        f"ray.init(address={cluster.address!r}); "
        f"DaarDomainProbeMapper(bundle_path={str(tiny_bundle)!r}, watch_ray_head=sys.argv[1] == 'on'); "
        "print('watching' if any(t.name == 'daar-ray-head-watch' for t in threading.enumerate()) else 'not watching')"
    )
    for switch, env, expected in (
        ("on", {}, "watching"),
        ("off", {}, "not watching"),
        ("on", {"DAAR_WATCH_RAY_HEAD": "0"}, "not watching"),
    ):
        done = subprocess.run([sys.executable, "-c", code, switch], env={**run_env(), **env}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == expected, (switch, env)
