"""Torch on a shared CPU: generation and embedding with the default model alone and beside another
torch job, with torch's default thread count and with the one ``CpuShare`` picks.

Usage: python -m benchmarks.shared_cpu   (writes benchmarks/results/shared_cpu.json)
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time

from benchmarks.common import machine, save


def _torch_job(seconds: float) -> None:
    """The other job: a torch loop on every core (as a second test suite or trainer would run)."""
    import os

    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    a, w = torch.randn(64, 576), torch.randn(576, 576)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        a = torch.tanh(a @ w)


def measure(threads: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from data_juicer_daar.method.backbone import Backbone
    from data_juicer_daar.method.models import resolve_model

    torch.set_num_threads(threads)
    model_dir = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompts = tok(["Write a short math question about fractions."] * 4, return_tensors="pt", padding=True)
    backbone = Backbone(None, num_layers=3, max_length=256, batch_size=32, dtype="float32")
    texts = ["Solve 3x + 7 = 22 for x and explain each step carefully."] * 64
    with torch.inference_mode():
        model.generate(**prompts, max_new_tokens=4, do_sample=False)  # warm-up
        t = time.perf_counter()
        model.generate(**prompts, max_new_tokens=48, do_sample=False)
        generate = time.perf_counter() - t
    backbone.encode(texts[:8])
    t = time.perf_counter()
    backbone.encode(texts)
    return {"threads": threads, "generate_s": round(generate, 2), "encode_s": round(time.perf_counter() - t, 2)}


def in_process(threads: int | None) -> dict:
    """``measure`` in a fresh process; ``None`` = the count CpuShare picks there."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run, (threads,))


def _run(threads: int | None) -> dict:
    import os

    from data_juicer_daar.method.cpu_share import CpuShare

    picked = CpuShare().threads() if threads is None else threads
    return {**measure(picked), "picked_by": "CpuShare" if threads is None else "fixed", "cores": len(os.sched_getaffinity(0))}


def main() -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    result = {"machine": machine(), "alone": {}, "beside_a_torch_job": {}}
    for label in ("alone", "beside_a_torch_job"):
        job = mp.get_context("spawn").Process(target=_torch_job, args=(600,)) if label != "alone" else None
        if job:
            job.start()
            time.sleep(3)
        try:
            result[label]["torch_default"] = in_process(cores)
            result[label]["one_thread"] = in_process(1)
            result[label]["cpu_share"] = in_process(None)
        finally:
            if job:
                job.terminate()
                job.join()
    save("shared_cpu", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
