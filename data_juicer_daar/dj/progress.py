"""Progress of a long scoring run: one line at the start, then rows, rate and ETA at a steady cadence.

Workers (forked processes, Ray actors) append one small JSON line per batch to the run's progress
file: rows seen, rows found already scored (by an earlier op or in the score store), rows scored.
A daemon thread in the process that runs the op (the ``dj-process`` parent, or the Ray driver)
reads the file every ``DAAR_PROGRESS_SECONDS`` (default 30) and logs a line when it changed.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

from loguru import logger

#: the progress file of the running op (set by ``ScoringOp.run``; workers forked by it inherit it)
PROGRESS_ENV = "DAAR_PROGRESS_LOG"
#: seconds between progress lines
CADENCE_ENV = "DAAR_PROGRESS_SECONDS"


def cadence() -> float:
    """Seconds between progress lines: ``$DAAR_PROGRESS_SECONDS`` (at least 0.1), 30 when unset or not a finite number."""
    try:
        seconds = float(os.environ.get(CADENCE_ENV) or 30)
    except ValueError:
        return 30.0
    return max(0.1, seconds) if math.isfinite(seconds) else 30.0


def note(path: str | Path | None, rows: int, ready: int, scored: int) -> None:
    """Record one batch from a worker: ``rows`` seen, ``ready`` of them already scored, ``scored`` scored here."""
    if path:
        with open(path, "a", encoding="utf-8") as fh:  # one short append per batch: whole lines even with many writers
            fh.write(json.dumps([rows, ready, scored]) + "\n")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Watch:
    """Logs the progress of ``who`` read from ``path`` until stopped.

    :param who: the op's name, first word of every line.
    :param path: the progress file the workers append to.
    :param total: rows the op will see (None when unknown, as in a Ray driver before the run).
    :param to_score: rows the start line counted as not yet scored (None when unknown).
    """

    def __init__(self, who: str, path: str | Path, total: int | None, to_score: int | None) -> None:
        self.who, self.path, self.total, self.to_score = who, Path(path), total, to_score
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._last: tuple[int, int, int] | None = None
        self._thread = threading.Thread(target=self._loop, name=f"daar-progress-{who}", daemon=True)

    def start(self) -> Watch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def counts(self) -> tuple[int, int, int]:
        """(rows seen, already scored, scored) so far."""
        seen = ready = scored = 0
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return 0, 0, 0
        for line in lines:
            try:
                r, a, s = json.loads(line)
            except (ValueError, TypeError):  # a line being written
                continue
            seen, ready, scored = seen + r, ready + a, scored + s
        return seen, ready, scored

    def line(self) -> str | None:
        """The progress line now, or None when nothing changed since the last one."""
        now = self.counts()
        if now == self._last or not now[0]:
            return None
        self._last = now
        seen, ready, scored = now
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = scored / elapsed
        of = f" of {self.total:,}" if self.total is not None else ""
        text = f"{self.who}: {seen:,}{of} rows ({ready:,} already scored, {scored:,} scored), {rate:.1f} rows/s"
        if self.to_score is not None:  # rows left to score, at the scoring rate
            left, pace = max(self.to_score - scored, 0), rate
        elif self.total is not None:  # rows left to pass (Ray: the rows to score are not known), at the pace they pass
            left, pace = max(self.total - seen, 0), seen / elapsed
        else:
            return text
        if left and pace > 0:
            text += f", ETA {_duration(left / pace)}"
        return text

    def _loop(self) -> None:
        every = cadence()
        while not self._stop.wait(every):
            text = self.line()
            if text:
                logger.info(text)
