"""Reading a JSONL pool for training and reports (strict: bad input is one clear error line)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CorpusError, RepeatedKeyError

#: the files Data-Juicer reads as JSON rows, by ``data_suffix`` (gzip and zstd shards too)
JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".json.zst", ".jsonl.zst")
COMPRESSED = (".gz", ".zst")


def data_suffix(path: str | Path) -> str:
    """The suffix by which Data-Juicer picks a file's reader: the last one, lower-cased, or the last
    two for a compressed file (``.jsonl.gz``)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    return "".join(suffixes[-2:]) if suffixes and suffixes[-1] in COMPRESSED else "".join(suffixes[-1:])


def read_data(path: str | Path) -> bytes:
    """The bytes of a data file, decompressed when its suffix says gzip or zstd (as Data-Juicer reads it)."""
    path = Path(path)
    data = path.read_bytes()
    suffix = data_suffix(path)
    try:
        if suffix.endswith(".gz"):
            import gzip

            return gzip.decompress(data)
        if suffix.endswith(".zst"):
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except Exception as exc:  # any decompressor failure is the file's, said in one line
        raise CorpusError(f"{path}: not a readable {suffix[suffix.rindex('.') + 1 :]} file ({type(exc).__name__}: {exc})") from None
    return data


INT64 = (-(2**63), 2**63 - 1)


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise RepeatedKeyError(next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i])))
    return out


def wide_integer(item: object) -> int | None:
    """The first integer in ``item`` beyond 64 bits (Data-Juicer's loader reads such a column as
    rounded floats), or None."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if not INT64[0] <= item <= INT64[1] else None
    items = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
    return next((w for w in map(wide_integer, items) if w is not None), None)


def parse_line(raw: bytes, where: str, expect: str = "each line must be one JSON object") -> object:
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
        value = json.loads(text, object_pairs_hook=_no_repeated_keys)
    except RepeatedKeyError as exc:
        raise CorpusError(
            f"{where}: the key {exc.key!r} appears twice in one object, which Data-Juicer's loader refuses for the whole file"
        ) from None
    except RecursionError:
        raise CorpusError(f"{where}: nested too deeply to read; flatten or drop that row") from None
    except ValueError:
        raise CorpusError(f"{where}: not valid JSON ({expect})") from None
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
    """All rows of a JSONL file (or of a file holding one JSON array of rows, as ``dj-process`` also
    reads); every row must be a JSON object (see ``parse_line``); a leading byte-order mark is
    skipped, as ``dj-process`` does. A file with no rows is an error unless ``allow_empty`` (e.g. a
    selection that legitimately kept nothing)."""
    path = Path(path)
    try:
        data = read_data(path)
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path}: {exc.strerror or exc}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    if data.lstrip().startswith(b"["):  # one JSON array of rows
        values = parse_line(data, f"{path}", "a file starting with [ must be one JSON array of rows")
        numbered = list(enumerate(values if isinstance(values, list) else [values], 1))
        where = "item"
    else:
        numbered = [(n, parse_line(line, f"{path}:{n}")) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
        where = "line"
    rows = []
    for number, row in numbered:
        if not isinstance(row, dict):
            raise CorpusError(
                f"{path}:{number}: expected a JSON object, got {type(row).__name__}" + (" (array item)" if where == "item" else "")
            )
        rows.append(row)
    if not rows and not allow_empty:
        raise CorpusError(f"corpus {path} is empty")
    return rows


def data_files(path: str | Path) -> list[Path]:
    """``path`` itself, or the JSON/JSONL files (plain, gzip, zstd) under the folder ``path`` (as ``dj-process`` reads a folder)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and data_suffix(p) in JSON_SUFFIXES)
    return [path]
