"""Torch threads follow the cores other processes leave free (real busy processes, real /proc/stat)."""

import multiprocessing as mp
import os
import sys
import time

import pytest
import torch

from data_juicer_daar.method.cpu_share import CpuShare


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="needs Linux and 2 cores")
def test_threads_shrink_while_other_processes_keep_the_cores_busy():
    cores = len(os.sched_getaffinity(0))
    share = CpuShare()
    hogs = [mp.get_context("fork").Process(target=_spin, args=(3.0,)) for _ in range(cores)]
    for h in hogs:
        h.start()
    try:
        time.sleep(0.5)
        share.threads()  # forget the idle interval
        time.sleep(0.5)
        busy = share.threads()
    finally:
        for h in hogs:
            h.join()
    assert busy == 1  # every core taken by another process: torch gets one thread, not a stall (torch's own default: every core)
    before = torch.get_num_threads()
    try:
        assert CpuShare().apply("test", share=cores * 4) == 1  # more workers than cores: one thread each
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
