"""Cost of the model fingerprint (a digest of every tensor the truncated backbone reads).

Measured on the default model and on a multi-GB model directory built here (a Llama of 7B-like
width, 8 of its blocks written, bf16, uninitialised weights: hashing time does not depend on the
values), for L=3 (what a bundle checks) and the whole model (what the synthesis cache key uses),
cold (first time) and warm (read from the fingerprint cache).

Usage: python -m benchmarks.fingerprint_cost
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import OUT, machine, save


def big_model(path: Path) -> Path:
    """A 7B-width Llama directory with 8 blocks, sharded safetensors, bf16."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    if (path / "config.json").is_file():
        return path
    config = LlamaConfig(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=8,
        num_attention_heads=28,
        num_key_value_heads=4,
        torch_dtype="bfloat16",
    )
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in LlamaForCausalLM(config).state_dict().items()}
    staging = Path(tempfile.mkdtemp(dir=path.parent))
    shard, size, index = {}, 0, 0
    for name, shape in shapes.items():
        shard[name] = torch.empty(shape, dtype=torch.bfloat16)
        size += shard[name].numel() * 2
        if size > 2**30 or name == list(shapes)[-1]:
            save_file(shard, str(staging / f"model-{index:05d}.safetensors"), metadata={"format": "pt"})
            shard, size, index = {}, 0, index + 1
    config.save_pretrained(staging)
    os.replace(staging, path)
    return path


def timed_fingerprint(model_dir: Path, num_layers: int | None) -> dict:
    from data_juicer_daar.method.models import cache_dir, model_fingerprint

    shutil.rmtree(cache_dir() / "fingerprints", ignore_errors=True)
    t = time.perf_counter()
    model_fingerprint(model_dir, num_layers)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    model_fingerprint(model_dir, num_layers)
    return {"cold_s": round(cold, 3), "warm_s": round(time.perf_counter() - t, 4)}


def main() -> None:
    from data_juicer_daar.method.models import prepare_default_model

    results = {}
    for label, model_dir in (
        ("default model (SmolLM2-135M)", prepare_default_model()),
        ("7B-width, 8 blocks", big_model(OUT / "big_model")),
    ):
        gib = sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) / 2**30
        results[label] = {
            "weights_gib": round(gib, 2),
            "L=3": timed_fingerprint(model_dir, 3),
            "whole model": timed_fingerprint(model_dir, None),
        }
        print(label, results[label], flush=True)
    save("fingerprint_cost", {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
