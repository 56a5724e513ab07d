"""The running recipe's paths, checked when the first DaaR op is built, before any row is scored.

Data-Juicer writes ``export_path``, its ``*_stats.jsonl`` sibling and every op's
``stats_export_path`` in place, without looking at what is there: a recipe whose output is its own
input replaces the user's pool with the selection, exit 0. The ops refuse such a recipe, and an
input file Data-Juicer cannot read at all (an empty one), in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from loguru import logger

from ..errors import ConfigError
from ..method.corpus import JSON_SUFFIXES
from .dropped_rows import local_inputs

#: set by ``daar process``, which exports aside and renames (the in-place hint is then not said)
ATOMIC_EXPORT_ENV = "DAAR_ATOMIC_EXPORT"


_hinted: set[str] = set()  # exports the in-place hint was said for (once per process)


def stats_sibling(export_path: str) -> str | None:
    """The file Data-Juicer's default exporter writes the rows' stats and meta to beside
    ``export_path`` (its own rule: every ``.<suffix>`` in the path replaced); None for a path whose
    name has no suffix (a folder export, which only the Ray exporter writes, with no stats file)."""
    if "." not in Path(export_path).name:
        return None
    suffix = export_path.rsplit(".", 1)[-1]
    return export_path.replace("." + suffix, "_stats.jsonl")


def written_paths(cfg) -> list[tuple[str, str]]:
    """(what, path) of every local file the recipe makes Data-Juicer write."""
    out: list[tuple[str, str]] = []
    export = getattr(cfg, "export_path", None)
    if export and "://" not in str(export):
        out.append(("export_path", str(export)))
        sibling = stats_sibling(str(export)) if getattr(cfg, "executor_type", "default") != "ray" else None
        if sibling:
            out.append(("the export's stats file", sibling))
    for op in getattr(cfg, "process", None) or []:
        for name, params in op.items() if isinstance(op, dict) else []:
            path = params.get("stats_export_path") if isinstance(params, dict) else None
            if path:
                out.append((f"{name}'s stats_export_path", str(path)))
    return out


def _blank(path: Path, chunk: int = 1 << 16) -> bool:
    """Whether the file holds only whitespace (read up to its first other byte, not whole)."""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            if block.strip():
                return False
    return True


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def read_paths(cfg) -> list[tuple[str, Path]]:
    """(what, path) of everything the recipe reads: its inputs, and each op's bundle and model."""
    out = [("the recipe's input", Path(p)) for p in local_inputs(cfg)]
    for op in getattr(cfg, "process", None) or []:
        for name, params in op.items() if isinstance(op, dict) else []:
            for key in ("bundle_path", "probe_path", "model_path"):
                value = params.get(key) if isinstance(params, dict) else None
                if isinstance(value, str) and value and "://" not in value:
                    out.append((f"{name}'s {key}", Path(value).expanduser()))
    return out


def check_recipe_paths(cfg) -> None:
    """``ConfigError`` when the recipe would write over one of its inputs, bundles or models (or into
    such a folder), write two outputs to one path, or read an empty file."""
    inputs = read_paths(cfg)
    seen: dict[Path, str] = {}
    for what, path in written_paths(cfg):
        target = Path(path).resolve()
        for label, given in inputs:
            if _inside(target, given.resolve()):
                raise ConfigError(
                    f"{what} {path} is {'inside ' if target != given.resolve() else ''}{label} {given}: Data-Juicer would "
                    "write over what the recipe reads; export elsewhere"
                )
        if target in seen:
            raise ConfigError(f"{what} and {seen[target]} are one file, {path}: the second would overwrite the first; give each its own")
        seen[target] = what
    for label, given in inputs:
        if label == "the recipe's input" and given.is_file() and given.suffix in JSON_SUFFIXES and _blank(given):
            raise ConfigError(f"{given} is empty: Data-Juicer cannot read a dataset with no rows; give it rows or leave it out")
    export = getattr(cfg, "export_path", None)
    if export and Path(export).exists() and not os.environ.get(ATOMIC_EXPORT_ENV) and export not in _hinted:
        _hinted.add(export)
        logger.info(
            f"Data-Juicer rewrites {export} in place: a run killed while exporting leaves it cut short; "
            "`daar process --config RECIPE` exports aside and renames when whole (docs/outputs.md)"
        )


def check_running_recipe() -> None:
    """``check_recipe_paths`` on the recipe ``dj-process`` is running (nothing outside ``dj-process``)."""
    from data_juicer.config import config as dj_config

    cfg = getattr(dj_config, "global_cfg", None)
    if cfg is not None:
        check_recipe_paths(cfg)
