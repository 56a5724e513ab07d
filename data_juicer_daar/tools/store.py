"""``daar store``: what the score store holds, and removing what a user no longer needs."""

from __future__ import annotations

import math
import shutil
import time
from datetime import datetime
from pathlib import Path

from ..dj.reuse import scoring_tag
from ..dj.score_store import TagSummary, default_root, summarize
from ..errors import ConfigError, DaarError
from ..method.bundle import read_manifest
from ..method.text import TextFields


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def stale_reason(entry: TagSummary) -> str | None:
    """Why no op will read this tag again (its bundle is gone, or was retrained in place), or None."""
    bundle = entry.info.get("bundle")
    if not bundle:
        return "no record of its bundle"
    try:
        heads = read_manifest(bundle).heads_id
        tag = scoring_tag(heads, TextFields(**entry.info["text"]), entry.info["dtype"])
    except (DaarError, OSError, KeyError, TypeError, ValueError):
        return "its bundle is gone"
    return None if tag == entry.tag else "its bundle was retrained"


def _root(root: Path | None) -> Path:
    root = root or default_root()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is not a folder", option="dir")
    return root


def list_store(root: Path | None = None) -> None:
    """Print every tag of the store: rows, files, size, when last written, bundle, number format."""
    root = _root(root)
    tags = summarize(root)
    print(f"score store {root}: {len(tags)} tag(s), {sum(t.rows for t in tags):,} rows, {_size(sum(t.bytes for t in tags))}")
    for t in tags:
        when = datetime.fromtimestamp(t.modified).strftime("%Y-%m-%d %H:%M") if t.modified else "-"
        stale = stale_reason(t)
        note = f"  [stale: {stale}]" if stale else ""
        print(
            f"  {t.tag}  {t.rows:,} rows  {t.files} files  {_size(t.bytes)}  written {when}  "
            f"bundle {t.info.get('bundle', '?')} ({t.info.get('dtype', '?')}){note}"
        )


def prune_store(
    root: Path | None, stale: bool = False, bundle: str | None = None, older_than: float | None = None, every: bool = False
) -> None:
    """Remove the tags any criterion selects; only folders the ops wrote (with their ``info.json``)."""
    root = _root(root)
    if older_than is not None and not (math.isfinite(older_than) and older_than >= 0):
        raise ConfigError(f"--older-than must be a number of days, 0 or more, got {older_than}", option="older_than")
    wanted = str(Path(bundle).expanduser().resolve()) if bundle else None
    cutoff = time.time() - (older_than or 0) * 86400
    removed = rows = 0
    for t in summarize(root):  # only folders the ops wrote, each with its record
        if (
            every
            or (stale and stale_reason(t))
            or (wanted and t.info.get("bundle") == wanted)
            or (older_than is not None and t.modified < cutoff)
        ):
            shutil.rmtree(root / t.tag)
            removed, rows = removed + 1, rows + t.rows
    print(f"removed {removed} tag(s), {rows:,} rows")
