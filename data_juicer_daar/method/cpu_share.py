"""Torch threads sized to the cores this process can have now, so a shared machine slows in proportion.

Torch starts one intra-op thread per core. When other processes keep some of those cores busy,
every parallel region waits for its slowest, descheduled thread. On a 2-core machine, generating
48 tokens for 4 prompts with the default model took 2.9 s alone (3.0 s with 1 thread); beside
another torch process using 2 threads it took 18.4 s with 2 threads and 4.4 s with 1, beside two
busy Python processes 11.4 s and 4.6 s (benchmarks/README.md, section 10). ``CpuShare`` measures, from
``/proc/stat`` and this process's own CPU time, how many of its cores others kept busy since the
last look and gives the rest to torch. Without ``/proc/stat`` (not Linux) it gives every core.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from loguru import logger


def _cores() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def _busy_seconds(cores: set[int]) -> float | None:
    """CPU seconds the ``cores`` spent busy since boot (all processes), from /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy, tick = 0, os.sysconf("SC_CLK_TCK")
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy / tick


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class CpuShare:
    """``threads()``: this process's cores less those other processes kept busy since the last call
    (at least 1). The first call looks over a short ``probe`` interval."""

    def __init__(self, probe: float = 0.25) -> None:
        self.cores = _cores()
        self.probe = probe
        self._last: tuple[float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float] | None:
        busy = _busy_seconds(self.cores)
        return None if busy is None else (time.monotonic(), busy, _own_seconds())

    def threads(self) -> int:
        if self._last is None:
            self._last = self._sample()
            time.sleep(self.probe)
        now = self._sample()
        if now is None or self._last is None:
            return len(self.cores)
        wall = max(now[0] - self._last[0], 1e-3)
        others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / wall
        self._last = now
        return max(1, len(self.cores) - round(others))

    def apply(self, who: str, share: int = 1) -> int:
        """Set torch's threads to ``threads() // share`` (``share``: processes splitting the cores); logs a change."""
        threads = max(1, self.threads() // max(1, share))
        if threads != torch.get_num_threads():
            if threads < len(self.cores) // max(1, share):
                logger.info(
                    f"{who}: other processes keep {len(self.cores) - threads * share} of {len(self.cores)} cores busy; "
                    f"torch uses {threads} thread(s)"
                )
            torch.set_num_threads(threads)
        return threads
