"""Reading a JSONL pool for training and reports (strict: bad input is one clear error line)."""

from __future__ import annotations

import json
from pathlib import Path
from ..errors import CorpusError


def parse_line(raw: bytes, where: str) -> object:
    """One JSONL line as JSON; ``CorpusError`` naming ``where`` (file:line) for the lines that
    ``dj-process`` refuses or chokes on too: invalid UTF-8, not JSON, a lone surrogate escape
    (``"\\ud800"``: Data-Juicer's loader refuses the whole file), nesting too deep to read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); re-encode the file as UTF-8"
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise CorpusError(f"{where}: nested too deeply to read; flatten or drop that row") from None
    except ValueError:
        raise CorpusError(f"{where}: not valid JSON (each line must be one JSON object)") from None
    if b"\\ud" not in raw.lower():  # no \uDxxx escape: no surrogate, skip the re-encoding check
        return value
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise CorpusError(
            f'{where}: holds a lone surrogate escape (e.g. "\\ud800"), which Data-Juicer\'s loader refuses for the whole file; '
            "remove or replace it"
        ) from None
    except RecursionError:
        raise CorpusError(f"{where}: nested too deeply to read; flatten or drop that row") from None
    return value


def read_jsonl(path: str | Path, allow_empty: bool = False) -> list[dict]:
    """All rows of a JSONL file; every non-blank line must be a JSON object (see ``parse_line``). A
    file with no rows is an error unless ``allow_empty`` (e.g. a selection that legitimately kept nothing)."""
    path = Path(path)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc.strerror or exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = parse_line(line, f"{path}:{number}")
        if not isinstance(row, dict):
            raise CorpusError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    if not rows and not allow_empty:
        raise CorpusError(f"corpus {path} is empty")
    return rows
