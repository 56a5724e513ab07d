"""Reading a JSONL pool for training and reports (strict: bad input is one clear error line)."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DaarError


class CorpusError(DaarError, ValueError):
    """The corpus cannot be used (one-line message naming the file and line)."""


def read_jsonl(path: str | Path, allow_empty: bool = False) -> list[dict]:
    """All rows of a JSONL file; every non-blank line must be a JSON object. A file with no rows
    is an error unless ``allow_empty`` (e.g. a selection that legitimately kept nothing)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc.strerror or exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise CorpusError(f"{path}:{number}: not valid JSON (each line must be one JSON object)") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    if not rows and not allow_empty:
        raise CorpusError(f"corpus {path} is empty")
    return rows
