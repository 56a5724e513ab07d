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


def stats_sibling(export_path: str, export_type: str | None = None) -> str | None:
    """The file Data-Juicer's default exporter writes the rows' stats and meta to beside
    ``export_path``, by its own rule: the format is ``export_type``, else the path's last suffix in
    lower case, and every ``.<format>`` in the path is replaced by ``_stats.jsonl`` (so the sibling
    is the export itself when the path does not spell the format in lower case). None for a path
    with no suffix and no ``export_type`` (a folder export, which only the Ray exporter writes)."""
    if export_type is None and "." not in Path(export_path).name:
        return None
    fmt = export_type or export_path.rsplit(".", 1)[-1].lower()
    return export_path.replace("." + fmt, "_stats.jsonl")


def written_paths(cfg) -> list[tuple[str, str]]:
    """(what, path) of every local file the recipe makes Data-Juicer write."""
    out: list[tuple[str, str]] = []
    export = getattr(cfg, "export_path", None)
    if export and "://" not in str(export):
        out.append(("export_path", str(export)))
        sibling = (
            stats_sibling(str(export), getattr(cfg, "export_type", None)) if getattr(cfg, "executor_type", "default") != "ray" else None
        )
        if sibling == str(export):
            fmt = getattr(cfg, "export_type", None) or str(export).rsplit(".", 1)[-1].lower()
            raise ConfigError(
                f"export_path {export}: Data-Juicer names the stats file by replacing '.{fmt}' in it, finds none, and so writes "
                f"the stats and then the rows to this one file (the stats are lost); end export_path with .{fmt}"
            )
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


def store_dirs(cfg) -> list[tuple[str, Path]]:
    """(what, folder) of the score store of each DaaR op that keeps one."""
    from .score_store import default_root

    out = []
    for op in getattr(cfg, "process", None) or []:
        for name, params in op.items() if isinstance(op, dict) else []:
            params = params if isinstance(params, dict) else {}
            if name.startswith("daar_") and params.get("score_store", True) is not False:
                folder = params.get("score_store_dir")
                out.append((f"{name}'s score store", Path(folder).expanduser() if isinstance(folder, str) and folder else default_root()))
    return out


def _check_writable(what: str, path: str, folder_export: bool, export_type: str | None = None) -> None:
    """``ConfigError`` when Data-Juicer could not write ``path`` at the end of the run: a path it does
    not expand (``~``), a file export onto an existing folder or with no suffix, or a folder it cannot write into."""
    if path.startswith("~"):
        raise ConfigError(
            f"{what} {path} starts with ~, which Data-Juicer does not expand (it would make a folder named ~); write the full path"
        )
    target = Path(path)
    if target.is_dir() and not folder_export:
        raise ConfigError(
            f"{what} {path} is an existing folder: Data-Juicer writes a file there; name a file (e.g. {path.rstrip('/')}/selected.jsonl)"
        )
    if what == "export_path" and not folder_export and "." not in target.name and not export_type:
        raise ConfigError(
            f"export_path {path} has no suffix: the default executor writes one file and picks its format by the suffix "
            "(.jsonl, .json, .parquet); only the Ray executor writes a folder"
        )
    parent = next((p for p in [target.parent, *target.parent.parents] if p.exists()), None)
    if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK)):
        raise ConfigError(f"{what} {path}: {parent} is not a folder this user can write into")


def check_recipe_paths(cfg, hint: bool = True) -> None:
    """``ConfigError`` when the recipe would write over one of its inputs, bundles or models (or into
    such a folder), write two outputs to one path, write where it cannot, or read an empty file.
    ``hint``: say once that plain ``dj-process`` rewrites an existing export in place."""
    inputs = read_paths(cfg)
    seen: dict[Path, str] = {}
    folder_export = getattr(cfg, "executor_type", "default") == "ray"
    for what, path in written_paths(cfg):
        _check_writable(what, path, folder_export and what == "export_path", getattr(cfg, "export_type", None))
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
    for what, store in store_dirs(cfg):
        for label, given in [*inputs, *((w, Path(p)) for w, p in written_paths(cfg))]:
            if _inside(store.resolve(), given.resolve()):
                raise ConfigError(
                    f"{what} {store} is {'inside ' if store.resolve() != given.resolve() else ''}{label} {given}: the ops would "
                    "write their score files there; set score_store_dir to a folder of its own"
                )
    for label, given in inputs:
        if label == "the recipe's input" and given.is_file() and given.suffix.lower() in JSON_SUFFIXES and _blank(given):
            raise ConfigError(f"{given} is empty: Data-Juicer cannot read a dataset with no rows; give it rows or leave it out")
    export = getattr(cfg, "export_path", None)
    if hint and export and Path(export).exists() and not os.environ.get(ATOMIC_EXPORT_ENV) and export not in _hinted:
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
