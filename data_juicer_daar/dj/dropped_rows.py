"""Rows Data-Juicer drops before any op runs, counted so the loss is never silent.

Data-Juicer's formatter removes every row whose ``text_keys`` field is null or missing, before the
first op sees the data, and no recipe setting turns that off. The DaaR ops score every row they are
given, so the first one built in a run counts, in the recipe's local input, the rows that field
drops and warns once with the count. A folder of shards in more than one format (JSONL and
Parquet, say) loses whole files: both executors read one format per folder, so the ops refuse it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from pathlib import Path

from loguru import logger

from ..errors import ConfigError
from ..method.corpus import JSON_SUFFIXES, data_suffix, read_data

#: data file suffixes by the reader both executors pick for them (one reader per folder)
FORMATS = {**dict.fromkeys(JSON_SUFFIXES, "JSON"), ".parquet": "Parquet", ".csv": "CSV", ".tsv": "CSV", ".txt": "text"}


def _json_rows(path: Path) -> Iterable[object]:
    text = read_data(path).decode("utf-8", errors="replace")
    if text.lstrip().startswith("["):  # a JSON array
        yield from json.loads(text)
        return
    for line in text.splitlines():
        if line.strip():
            try:
                yield json.loads(line)
            except (ValueError, RecursionError):
                continue  # Data-Juicer's loader reports unreadable files itself


def _missing(value: object) -> bool:
    """Whether Data-Juicer's loader reads the field as null: absent, null, or a JSON NaN/Infinity."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _arrow_dropped(table, keys: list[str]) -> tuple[int, int]:
    import pyarrow.compute as pc

    present = [k for k in keys if k in table.column_names]
    if not present:
        return 0, table.num_rows
    mask = pc.is_null(table.column(present[0]))
    for key in present[1:]:
        mask = pc.or_(mask, pc.is_null(table.column(key)))
    return int(pc.sum(mask).as_py() or 0), table.num_rows


def count_dropped(path: str | Path, keys: list[str]) -> tuple[int, int] | None:
    """(rows whose ``keys`` field is null or missing, all rows) of a local JSON/JSONL/Parquet file, a
    folder of such files or a Hugging Face dataset saved to disk; None when the input is none of them."""
    path = Path(path)
    if path.is_dir() and (path / "state.json").is_file() and (path / "dataset_info.json").is_file():
        import datasets

        return _arrow_dropped(datasets.load_from_disk(str(path)).data.table, keys)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    dropped = total = 0
    seen = False
    for file in files:
        if data_suffix(file) == ".parquet":
            import pyarrow.parquet as pq

            d, t = _arrow_dropped(pq.read_table(file), keys)
        elif data_suffix(file) in JSON_SUFFIXES:
            d = t = 0
            for row in _json_rows(file):
                t += 1
                d += not isinstance(row, dict) or any(_missing(row.get(k)) for k in keys)
        else:
            continue
        seen, dropped, total = True, dropped + d, total + t
    return (dropped, total) if seen else None


@functools.cache
def _counted(path: str, keys: tuple[str, ...], stamp: tuple[float, int]) -> tuple[int, int] | None:
    return count_dropped(path, list(keys))


def _warn(path: str, keys: tuple[str, ...], stamp: tuple[float, int]) -> None:
    counted = _counted(path, keys, stamp)
    if counted and counted[0] and (path, keys, stamp) not in _warned:
        _warned.add((path, keys, stamp))
        dropped, total = counted
        logger.warning(
            f"{dropped} of {total} rows of {path} have no {' / '.join(keys)} (the recipe's text_keys; null, NaN and Infinity "
            "count as none) and were dropped by Data-Juicer's formatter before any op ran; give those rows the field (an empty "
            "string scores as no text) or set text_keys to a field every row has (docs/inputs.md)"
        )


_warned: set[tuple] = set()


def local_inputs(cfg) -> list[str]:
    """The recipe's local inputs: every path of ``dataset_path`` as Data-Juicer splits it (several
    paths, each with an optional weight before it), or the local entries of ``dataset.configs``."""
    if getattr(cfg, "dataset_path", None):
        from data_juicer.core.data.dataset_builder import parse_cli_datapath

        try:
            return parse_cli_datapath(str(cfg.dataset_path))[0]
        except ValueError:  # unbalanced quotes: Data-Juicer refuses it itself; the whole string is the closest reading
            return [str(cfg.dataset_path)]
    dataset = getattr(cfg, "dataset", None) or {}
    configs = dataset.get("configs", []) if isinstance(dataset, dict) else getattr(dataset, "configs", [])
    entries = [c if isinstance(c, dict) else vars(c) for c in configs or []]
    return [c["path"] for c in entries if c.get("type") == "local" and c.get("path")]


def check_one_format(path: str | Path) -> None:
    """``ConfigError`` when the folder ``path`` holds data files of more than one format: Data-Juicer
    would read the files of one format and skip the others without a word."""
    path = Path(path)
    if not path.is_dir() or (path / "state.json").is_file():
        return
    found: dict[str, int] = {}
    for file in path.rglob("*"):
        fmt = FORMATS.get(data_suffix(file)) if file.is_file() else None
        if fmt:
            found[fmt] = found.get(fmt, 0) + 1
    if len(found) > 1:
        held = " and ".join(f"{n} {fmt} file(s)" for fmt, n in sorted(found.items()))
        raise ConfigError(
            f"{path} holds {held}: Data-Juicer reads one format per folder and would skip the other files' rows; "
            "put each format in a folder of its own (or convert the shards to one format)"
        )


def _inputs() -> list[tuple[str, tuple[str, ...], tuple[float, int]]]:
    """(resolved path, text_keys, (mtime, size)) of each local input of the running recipe."""
    from data_juicer.config import config as dj_config

    cfg = getattr(dj_config, "global_cfg", None)
    if cfg is None:
        return []
    keys = getattr(cfg, "text_keys", None) or "text"
    keys = tuple([keys] if isinstance(keys, str) else keys)
    out = []
    for path in local_inputs(cfg):
        check_one_format(path)
        try:
            stat = Path(path).stat()
            out.append((str(Path(path).resolve()), keys, (stat.st_mtime, stat.st_size)))
        except OSError as exc:  # Data-Juicer reports a missing input itself
            logger.debug(f"could not read {path}: {exc}")
    return out


def warn_dropped_rows() -> None:
    """Warn once per input when the running recipe's ``text_keys`` dropped rows (no-op outside ``dj-process``)."""
    for entry in _inputs():
        try:
            _warn(*entry)
        except (OSError, ValueError) as exc:  # counting is advisory: never stop the run for it
            logger.debug(f"could not count the rows Data-Juicer dropped from {entry[0]}: {exc}")


def input_rows() -> int | None:
    """The rows the running recipe's local inputs hand to the first op (after the formatter's drops),
    None when any input is not a local file or folder the count reads."""
    total = 0
    for entry in _inputs():
        try:
            counted = _counted(*entry)
        except (OSError, ValueError):
            return None
        if counted is None:
            return None
        total += counted[1] - counted[0]
    return total or None
