"""From selection to a trained model: TRL's SFTTrainer with a LoRA adapter reads a DaaR selection."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import theme_rows, write_jsonl

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sft_trl.py"


def test_trl_sft_trains_a_lora_adapter_on_a_selection(tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = theme_rows(2)
    rows = [
        {"instruction": base[0]["instruction"], "input": "", "output": base[0]["output"]},
        {"messages": [{"role": "user", "content": base[1]["instruction"]}, {"role": "assistant", "content": "ok"}]},
        {
            "conversations": [
                {"from": "system", "value": "Be brief."},
                {"from": "human", "value": base[2]["instruction"]},
                {"from": "gpt", "value": "yes"},
            ]
        },
        {"text": base[3]["instruction"]},
        *({"instruction": r["instruction"], "input": "", "output": r["output"]} for r in base[4:]),
        {"id": "nothing-to-train-on"},
    ]
    data = write_jsonl(tmp_path / "selected.jsonl", rows)
    out = tmp_path / "lora"
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--data",
            str(data),
            "--model",
            str(tiny_model),
            "--out",
            str(out),
            "--max-steps",
            "3",
            "--batch-size",
            "2",
            "--max-length",
            "64",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"1 of {len(rows)} rows have no" in result.stderr  # the empty row is counted, not lost silently
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["rows_used"] == len(rows) - 1
    assert len(summary["losses"]) == 3 and all(math.isfinite(v) and v > 0 for v in summary["losses"])
    assert (out / "adapter_model.safetensors").is_file() and json.loads((out / "adapter_config.json").read_text())["r"] == 8
    # the adapter loads onto the base model and changed what it computes
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[1, 2, 3, 4]])
    before = model(ids).logits
    tuned = PeftModel.from_pretrained(model, out)
    assert not torch.allclose(before, tuned(ids).logits)


def test_trl_example_refuses_a_selection_without_usable_rows(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "selected.jsonl", [{"id": 1}, {"text": "  "}])
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--data", str(data), "--model", str(tiny_model), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == f"sft_trl: error: {data} has no usable rows"
