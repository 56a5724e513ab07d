"""``daar process``: ``dj-process`` with outputs that appear whole or not at all.

Data-Juicer's exporter writes ``export_path`` (and its ``*_stats.jsonl`` sibling, and every op's
``stats_export_path``) in place: a run killed while exporting leaves the previous complete file cut
short. This runs ``dj-process`` on a copy of the recipe whose outputs are hidden names beside the
real ones, and renames each onto its real name only when the run succeeded; a failed or killed run
leaves the previous outputs as they were.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

import yaml
from loguru import logger

from ..dj.processes import die_with_parent
from ..dj.recipe_paths import ATOMIC_EXPORT_ENV, check_recipe_paths, stats_sibling
from ..errors import ConfigError


def _aside(path: str) -> str:
    """A hidden name beside ``path`` with the same suffix, or none when it has none (Data-Juicer
    picks the format by it; a Ray folder export has none)."""
    p = Path(path)
    if not p.suffix:
        return str(p.with_name(f".partial-{os.getpid()}-{p.name}"))
    return str(p.with_name(f".{p.stem}.partial-{os.getpid()}{p.suffix}"))


def _recipe(config: str | Path) -> dict:
    try:
        recipe = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the recipe {config}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(recipe, dict):
        raise ConfigError(f"the recipe {config} is not a mapping of settings")
    return recipe


def _override(args: list[str], name: str) -> str | None:
    """The value of ``--name`` among the extra ``dj-process`` arguments (the last one wins)."""
    value = None
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


def _without(args: list[str], name: str) -> list[str]:
    """``args`` without ``--name VALUE`` / ``--name=VALUE``."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == f"--{name}":
            skip = True
        elif not arg.startswith(f"--{name}="):
            out.append(arg)
    return out


def plan(recipe: dict, extra: list[str]) -> tuple[dict, list[str], list[tuple[str, str]]]:
    """The recipe with its outputs renamed aside, the extra arguments without an export path, and
    the (aside, real) pairs to rename after success."""
    export = _override(extra, "export_path") or recipe.get("export_path")
    if not export or not isinstance(export, str):
        raise ConfigError("the recipe has no export_path: nothing to export")
    if "://" in export:
        raise ConfigError(f"export_path {export} is remote: daar process renames local files only; run dj-process directly")
    if str(_override(extra, "export_shard_size") or recipe.get("export_shard_size") or 0) not in ("0", "0.0"):
        raise ConfigError("export_shard_size writes several files: daar process renames one export; run dj-process directly")
    aside = _aside(export)
    pairs = [(aside, export)]
    export_type = _override(extra, "export_type") or recipe.get("export_type")
    if stats_sibling(export, export_type) and (_override(extra, "executor_type") or recipe.get("executor_type")) != "ray":
        pairs.append((stats_sibling(aside, export_type), stats_sibling(export, export_type)))
    process = []
    for op in recipe.get("process") or []:
        if isinstance(op, dict):
            op = dict(op)
            for name, params in op.items():
                if isinstance(params, dict) and isinstance(params.get("stats_export_path"), str):
                    real = params["stats_export_path"]
                    op[name] = {**params, "stats_export_path": _aside(real)}
                    pairs.append((_aside(real), real))
        process.append(op)
    renamed = {**recipe, "export_path": aside, **({"process": process} if "process" in recipe else {})}
    return renamed, _without(extra, "export_path"), pairs


def _remove_stale(pairs: list[tuple[str, str]]) -> None:
    """Remove what a killed ``daar process`` left aside beside these outputs (its PID no longer runs)."""
    for aside, _ in pairs:
        own = Path(aside)
        pattern = re.escape(own.name).replace(re.escape(f"partial-{os.getpid()}"), r"partial-(\d+)")
        for other in own.parent.glob(".*partial-*") if own.parent.is_dir() else []:
            found = re.fullmatch(pattern, other.name)
            if found and int(found.group(1)) != os.getpid() and not _alive(int(found.group(1))):
                _remove(other)
                logger.info(f"removed {other}, left by a daar process that was killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _publish(aside: Path, real: Path) -> None:
    """Rename ``aside`` onto ``real`` (a folder export: the old folder moved away first, then removed)."""
    if aside.is_dir() and real.is_dir():
        old = real.with_name(f".{real.name}.old-{os.getpid()}")
        os.replace(real, old)
        os.replace(aside, real)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(aside, real)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def run_process(config: str | Path, extra: list[str]) -> int:
    """Run ``dj-process --config`` with outputs aside; rename them when it succeeds. Returns its exit code."""
    recipe = _recipe(config)
    renamed, extra, pairs = plan(recipe, list(extra))
    # what the ops would refuse once Data-Juicer has loaded the data, and an empty input, which
    # Data-Juicer's loader fails on (a long traceback) before any op is built: refused here, first
    inputs = {name: value for name in ("dataset_path",) if (value := _override(extra, name)) is not None}
    check_recipe_paths(Namespace(**{**recipe, **inputs, "export_path": pairs[0][1]}), hint=False)  # this command exports aside
    _remove_stale(pairs)
    with tempfile.TemporaryDirectory(prefix="daar-process-") as tmp:
        copy = Path(tmp) / Path(config).name
        copy.write_text(yaml.safe_dump(renamed, sort_keys=False, allow_unicode=True), encoding="utf-8")
        command = [str(Path(sys.executable).parent / "dj-process"), "--config", str(copy), *extra]
        child = subprocess.Popen(command, env={**os.environ, ATOMIC_EXPORT_ENV: "1"}, preexec_fn=lambda: die_with_parent(signal.SIGTERM))
        # dj-process gets SIGTERM when this process dies (kill -9 included), and the ops' workers die with it;
        # SIGTERM (a scheduler, `kill`) goes on to dj-process, whose end is then handled like any failure
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
        try:
            rc = child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            rc = child.wait()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            if child.returncode != 0:
                for aside, _ in pairs:
                    _remove(Path(aside))
    if rc != 0:
        logger.error(f"dj-process exited {rc}: the previous outputs were left as they were")
        return rc
    for aside, real in pairs:
        if Path(aside).exists():
            Path(real).parent.mkdir(parents=True, exist_ok=True)
            _publish(Path(aside), Path(real))
            logger.info(f"wrote {real}")
    return 0
