"""The score store: every scored row kept on disk, so a killed or repeated run scores only what is missing.

A store is a folder (``default_root``, or the ops' ``score_store_dir``) with one sub-folder per
scoring tag (``reuse.scoring_tag``: bundle heads, text settings, number format). A row is found by
a 64-bit hash of its rendered text; a store written under another tag is never read. Each worker
writes every chunk of rows it scores as one whole ``.npz`` file (written aside, then renamed), so a
kill loses at most the chunk in flight per worker. Files that cannot be read in full, or whose
arrays disagree, are skipped with one warning: they are scored again, never read wrongly. Two runs
over one store both stay correct: they only add files, and equal keys hold equal scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger

from ..errors import ConfigError

#: overrides the default store folder for every op that does not set ``score_store_dir``
ROOT_ENV = "DAAR_SCORE_STORE"
CHUNK_GLOB = "chunk-*.npz"
RUNS = "runs"  # per tag: Ray jobs' driver marks and progress files
INFO = "info.json"  # per tag: what wrote it (for ``daar store``)
TAG_NAME = re.compile(r"[0-9a-f]{16}")  # ``reuse.scoring_tag``
ARRAYS = ("keys", "domain", "subdomain", "probs", "predictor", "probe_entropy")
ASIDE = (".tmp-*", ".probe-*")  # files written aside; a kill can leave them
ASIDE_STALE_S = 3600.0  # an aside file this old is a killed writer's (a chunk takes well under a second)


def _in_driver() -> bool:
    from .ray_watch import in_ray_driver

    return in_ray_driver()


def default_root() -> Path:
    """``$DAAR_SCORE_STORE``, else ``$XDG_CACHE_HOME/data_juicer_daar/scores``, else
    ``~/.cache/data_juicer_daar/scores``: where a user looks for a cache."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "data_juicer_daar" / "scores"


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """The store key of each rendered text: its 64-bit BLAKE2b hash (uint64)."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little") for t in texts],
        dtype=np.uint64,
    )


@dataclass
class Stored:
    """Scores of some rows as columns: domain index (-1: no text), sub-domain, probe softmax (n, K),
    predicted reward and probe entropy, all as the scorer computed them (float32)."""

    domain: np.ndarray
    subdomain: np.ndarray
    probs: np.ndarray
    predictor: np.ndarray
    probe_entropy: np.ndarray

    def take(self, idx: np.ndarray) -> Stored:
        return Stored(*(getattr(self, name)[idx] for name in ARRAYS[1:]))


def _read_chunk(path: Path, width: int) -> tuple[np.ndarray, Stored] | None:
    """A chunk's (keys, scores), or None when it cannot be read whole or its arrays disagree."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in ARRAYS}
    except Exception:  # truncated, not a zip, a missing array: all mean "not a chunk"
        return None
    n = len(arrays["keys"])
    shapes_ok = all(arrays[name].shape == (n,) for name in ARRAYS if name != "probs") and arrays["probs"].shape == (n, width)
    if not shapes_ok or arrays["keys"].dtype != np.uint64:
        return None
    return arrays["keys"], Stored(*(arrays[name] for name in ARRAYS[1:]))


class ScoreStore:
    """The scores of one tag under ``root``: ``lookup`` finds stored rows, ``add`` keeps a scored chunk.

    :param root: the store folder (all tags).
    :param tag: the scoring tag; its sub-folder holds this store's chunks.
    :param width: the number of domains (columns of ``probs``).
    """

    def __init__(self, root: str | Path, tag: str, width: int) -> None:
        self.root = Path(root)
        self.dir = self.root / tag
        self.width = width
        self._loaded: set[str] = set()  # chunk file names read so far
        self._parts: list[tuple[np.ndarray, Stored]] = []
        self._keys = np.empty(0, dtype=np.uint64)  # sorted, unique
        self._rows = np.empty(0, dtype=np.int64)  # row of each sorted key in the concatenated parts
        self._all: Stored | None = None
        self.skipped = 0
        self.refreshed: float | None = None  # when ``refresh`` last ran (monotonic)

    def open(self, info: dict, job: str | None = None) -> ScoreStore:
        """Create the folder if needed and check that it takes files (``ConfigError`` in one line if
        not). In a Ray worker of job ``job``: warn when the driver's mark is missing, that is when this
        node does not see the folder the driver sees."""
        try:
            (self.dir / RUNS).mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
            if not (self.dir / INFO).is_file():
                self._write_aside(self.dir / INFO, lambda p: p.write_text(json.dumps(info, indent=1), encoding="utf-8"))
            self._sweep()
            if job and not (self.dir / RUNS / f"{job}.driver").exists() and not _in_driver():
                logger.warning(
                    f"score store {self.root}: this Ray node does not see the folder the driver wrote to, so its scores stay on "
                    "this node and a rerun scheduled elsewhere scores them again; set score_store_dir to a folder every node mounts"
                )
        except OSError as exc:
            raise ConfigError(
                f"the score store {self.root} cannot be written ({exc.strerror or exc}); set score_store_dir (or "
                "$DAAR_SCORE_STORE) to a writable folder, or score_store: false to score without one",
                option="score_store_dir",
            ) from None
        return self

    def _sweep(self) -> None:
        """Remove the aside files that killed writers left (older than ``ASIDE_STALE_S``: one being
        written now, by any process on any node, is far younger)."""
        now, removed = time.time(), 0
        for path in (p for pattern in ASIDE for p in self.dir.glob(pattern)):
            try:
                if now - path.stat().st_mtime > ASIDE_STALE_S:
                    path.unlink()
                    removed += 1
            except OSError:  # another process removed it first
                continue
        if removed:
            logger.info(f"score store {self.dir}: removed {removed} unfinished file(s) left by killed runs")

    def mark_driver(self, job: str | None) -> None:
        """In a Ray driver: leave the mark by which the job's workers tell that they see this folder."""
        if job:
            (self.dir / RUNS / f"{job}.driver").touch()

    def progress_file(self, job: str | None, who: str) -> Path:
        """The progress file of op ``who`` in Ray job ``job`` (the driver reads what the workers write)."""
        return self.dir / RUNS / f"{job}-{who}.jsonl"

    def refresh(self) -> int:
        """Read the chunk files added since the last call; the number of rows the store holds."""
        self.refreshed = time.monotonic()
        names = sorted(p.name for p in self.dir.glob(CHUNK_GLOB)) if self.dir.is_dir() else []
        new = [n for n in names if n not in self._loaded]
        skipped = 0
        for name in new:
            part = _read_chunk(self.dir / name, self.width)
            self._loaded.add(name)
            if part is None:
                skipped += 1
            else:
                self._parts.append(part)
        if skipped:
            self.skipped += skipped
            logger.warning(f"score store {self.dir}: {skipped} chunk file(s) could not be read whole; their rows are scored again")
        if len(new) > skipped:
            self._index()
        return len(self._keys)

    def _index(self) -> None:
        keys = np.concatenate([k for k, _ in self._parts])
        self._all = Stored(*(np.concatenate([getattr(s, name) for _, s in self._parts]) for name in ARRAYS[1:]))
        self._keys, first = np.unique(keys, return_index=True)  # equal keys hold equal scores: keep one
        self._rows = first.astype(np.int64)

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, keys: np.ndarray, stale: float = 10.0) -> tuple[np.ndarray, Stored | None]:
        """(the positions of ``keys`` found, their scores in that order). Files other processes added
        are read first when the store was never read, or when a key is missing and the last read is
        ``stale`` seconds old."""
        if self.refreshed is None:
            self.refresh()
        found, values = self._lookup(keys)
        held = len(self._keys)
        if len(found) < len(keys) and time.monotonic() - self.refreshed >= stale and self.refresh() > held:
            found, values = self._lookup(keys)
        return found, values

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, Stored | None]:
        if not len(self._keys) or not len(keys):
            return np.empty(0, dtype=np.int64), None
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        found = np.flatnonzero(self._keys[at] == keys)
        return found, self._all.take(self._rows[at[found]])

    def add(self, keys: np.ndarray, scores: Stored) -> None:
        """Keep one scored chunk as a whole file (written aside, then renamed)."""
        if not len(keys):
            return
        name = f"chunk-{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{len(keys)}.npz"
        arrays = {
            "keys": keys.astype(np.uint64),
            "domain": scores.domain.astype(np.int16),
            "subdomain": scores.subdomain.astype(np.int32),
            **{name: getattr(scores, name).astype(np.float32) for name in ("probs", "predictor", "probe_entropy")},
        }
        self._write_aside(self.dir / name, lambda p: np.savez(p, **arrays))

    @staticmethod
    def _write_aside(path: Path, write) -> None:
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
        try:
            write(tmp)  # the aside name keeps the suffix, so numpy adds none
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class TagSummary:
    """One tag's folder in a store: its rows, files, bytes, what wrote it and when it was last written."""

    tag: str
    rows: int
    files: int
    bytes: int
    info: dict
    modified: float


def _info(folder: Path) -> dict | None:
    """The record an op wrote in a tag folder, or None when ``folder`` is not one the ops wrote."""
    if not TAG_NAME.fullmatch(folder.name):
        return None
    try:
        info = json.loads((folder / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and {"bundle", "dtype", "text"} <= set(info) else None


def summarize(root: str | Path) -> list[TagSummary]:
    """Every tag folder the ops wrote under ``root`` (rows counted from the file names, nothing loaded)."""
    root = Path(root)
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        info = _info(folder)
        if info is None:
            continue
        files = [p for p in folder.iterdir() if p.is_file()]
        chunks = [p for p in files if p.match(CHUNK_GLOB)]
        rows = sum(int(p.stem.rsplit("-", 1)[-1]) for p in chunks if p.stem.rsplit("-", 1)[-1].isdigit())
        stats = [p.stat() for p in files]
        out.append(
            TagSummary(folder.name, rows, len(chunks), sum(s.st_size for s in stats), info, max((s.st_mtime for s in stats), default=0.0))
        )
    return out
