"""Child processes that do not outlive their parent."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send this process ``sig`` when its parent dies, even by ``kill -9`` (Linux;
    elsewhere a no-op). Call it in the child. The parent is the thread that forked: call it only in
    a child forked by a thread that lives as long as the parent process."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the child outlives a killed parent
        pass
