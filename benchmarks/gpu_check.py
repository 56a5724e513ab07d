"""The CUDA path, checked on a GPU machine: ``bash benchmarks/gpu_check.sh``.

1. Scores the demo corpus with the default model in bfloat16 on CUDA and in float32 on the CPU (the
   same bundle) and compares: selection overlap of the top 20 % (overall and balanced), Spearman of
   the scores, largest score difference.
2. Measures the truncated backbone (L=3 blocks) of a model with Qwen2-7B's sizes (random weights:
   time does not depend on the values) in bfloat16 at several batch sizes: samples/s, tokens/s and
   peak GPU memory.

Writes benchmarks/results/gpu_check.json. On a machine without CUDA it says so in one line and
exits with status 3.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.common import machine, save
from benchmarks.precision import agreement

#: Qwen2-7B's configuration sizes (its config.json), the 7B shape the truncated backbone is timed at
QWEN2_7B = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_attention_heads=28,
    num_key_value_heads=4,
    vocab_size=152064,
    max_position_embeddings=32768,
    rms_norm_eps=1e-6,
)


def no_cuda_message() -> str | None:
    if torch.cuda.is_available():
        return None
    build = f"CUDA build {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return (
        f"gpu_check: no CUDA device is visible to torch {torch.__version__} ({build}); run it on a machine with an "
        'NVIDIA GPU and a CUDA torch (DAAR_TORCH="torch==2.13.0 --index-url <CUDA index>" bash scripts/setup_env.sh)'
    )


@torch.inference_mode()
def throughput(batch_sizes: list[int], seq_len: int, blocks: int = 3, repeats: int = 5) -> list[dict]:
    """Samples/s of a 7B-shaped truncated backbone in bfloat16 (random weights and tokens)."""
    from transformers import AutoModel, Qwen2Config

    config = Qwen2Config(num_hidden_layers=blocks, **QWEN2_7B)
    model = AutoModel.from_config(config, dtype=torch.bfloat16).to("cuda").eval()
    rows = []
    for batch in batch_sizes:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        ids = torch.randint(0, config.vocab_size, (batch, seq_len), device="cuda")
        mask = torch.ones_like(ids)
        model(input_ids=ids, attention_mask=mask)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            (hidden.float() * mask.unsqueeze(-1)).sum(1)  # the pooling the scorer does
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / repeats
        rows.append(
            {
                "batch": batch,
                "seq_len": seq_len,
                "samples_per_s": round(batch / seconds, 1),
                "tokens_per_s": round(batch * seq_len / seconds),
                "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="8,16,32,64,128", help="batch sizes timed (default: 8,16,32,64,128)")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per sample in the throughput test (default: 512)")
    parser.add_argument("--skip-agreement", action="store_true", help="only time the 7B-shaped backbone")
    args = parser.parse_args()
    message = no_cuda_message()
    if message:
        print(message, file=sys.stderr)
        return 3
    result = {"machine": machine(), "gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    if not args.skip_agreement:
        result["bf16_vs_fp32"] = agreement(("cpu", "float32"), ("cuda", "bfloat16"))
        print(result["bf16_vs_fp32"], flush=True)
    result["qwen2_7b_shape_L3"] = throughput([int(b) for b in args.batch_sizes.split(",")], args.seq_len)
    print(f"written to {save('gpu_check', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
