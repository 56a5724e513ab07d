"""Fine-tune a model on a DaaR selection with TRL's SFTTrainer and a LoRA adapter (peft).

Uses TRL's, peft's and datasets' public APIs only, so it can be copied into any training repo.
Rows in Alpaca (instruction/input/output), chat ``messages`` (role/content), ShareGPT
``conversations`` (from/value) or plain ``text`` form become TRL's conversational ``messages``
form; a row with none of them is counted and left out, never silently.

    python examples/sft_trl.py --data outputs/demo/selected.jsonl --model "$(daar model path)" \\
        --out outputs/demo/lora --max-steps 30

Writes the adapter (``adapter_model.safetensors``, ``adapter_config.json``) and ``train_summary.json``
(loss per logged step, rows used and left out, seconds) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


def to_messages(row: dict) -> list[dict] | None:
    """The row as a list of role/content turns, or None when it holds no usable text."""
    if row.get("instruction") or row.get("output"):
        prompt = "\n\n".join(str(row[k]).strip() for k in ("instruction", "input") if row.get(k))
        turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": str(row.get("output") or "").strip()}]
    elif isinstance(row.get("messages"), list) or isinstance(row.get("conversations"), list):
        raw = row.get("messages") if isinstance(row.get("messages"), list) else row["conversations"]
        turns = [
            {
                "role": ROLES.get(str(t.get("role") or t.get("from") or "user"), "user"),
                "content": str(t.get("content") or t.get("value") or "").strip(),
            }
            for t in raw
            if isinstance(t, dict)
        ]
    elif isinstance(row.get("text"), str):
        turns = [{"role": "user", "content": row["text"].strip()}]
    else:
        return None
    turns = [t for t in turns if t["content"]]
    return turns or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="selected JSONL (the recipe's export_path)")
    parser.add_argument("--model", required=True, help="local Hugging Face model directory to fine-tune")
    parser.add_argument("--out", required=True, help="directory for the adapter and train_summary.json")
    parser.add_argument("--max-steps", type=int, default=30, help="optimizer steps (default: 30)")
    parser.add_argument("--batch-size", type=int, default=4, help="rows per step (default: 4)")
    parser.add_argument("--lr", type=float, default=2e-4, help="learning rate (default: 2e-4)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per row (default: 512)")
    parser.add_argument("--lora-r", type=int, default=8, help="LoRA rank (default: 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    conversations = [to_messages(r) for r in rows]
    usable = [{"messages": c} for c in conversations if c]
    skipped = len(rows) - len(usable)
    if skipped:
        print(f"sft_trl: {skipped} of {len(rows)} rows have no Alpaca, messages, conversations or text content; left out", file=sys.stderr)
    if not usable:
        print(f"sft_trl: error: {args.data} has no usable rows", file=sys.stderr)
        return 2
    config = SFTConfig(
        output_dir=args.out,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=args.seed,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=args.model, args=config, train_dataset=Dataset.from_list(usable), peft_config=lora)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trainer.save_model(args.out)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    summary = {
        "rows": len(rows),
        "rows_used": len(usable),
        "rows_left_out": skipped,
        "steps": trainer.state.global_step,
        "losses": losses,
        "seconds": round(seconds, 1),
        "device": str(trainer.args.device),
    }
    (Path(args.out) / "train_summary.json").write_text(json.dumps(summary, indent=1))
    print(
        f"sft_trl: {summary['steps']} steps on {len(usable)} rows in {seconds:.0f} s; loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
        f"adapter in {args.out}"
    )
    return 0 if losses and all(math.isfinite(v) for v in losses) else 1


if __name__ == "__main__":
    sys.exit(main())
