"""Shared fixtures: a tiny random Llama (real transformers model + real BPE tokenizer) built locally,
small real JSONL corpora, and a bundle trained on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs dj-process, dj-analyze, Ray, the daar command or the default model in subprocesses (deselect with -m 'not slow' for a fast inner loop; CI runs all)")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# four themes with distinct vocabularies, so a tiny model's clusters are learnable
THEMES = {
    "mathematics": ["Solve {a} + {b} * x = {c} for x.", "What is {a} percent of {b}?", "Compute the area of a square with side {a}."],
    "coding": ["Write a Python function that returns the sum of {a} and {b}.", "def f{a}(x):\n    return x * {b}", "Fix the bug: for i in range({a}) print(i)"],
    "reasoning": ["All cats are animals. Tom{a} is a cat. Is Tom{a} an animal?", "If it rains the match stops; it did not stop on day {a}. Did it rain?", "Anna is taller than Ben{a}. Who is shorter?"],
    "common_sense": ["Why do people carry umbrellas on day {a}?", "Where do you keep milk so it stays fresh for {a} days?", "What do you wear when it is {a} degrees and snowing?"],
}


def theme_rows(n_per_theme: int = 30) -> list[dict]:
    rows = []
    for theme, templates in THEMES.items():
        for i in range(n_per_theme):
            t = templates[i % len(templates)]
            rows.append({"id": f"{theme}-{i}", "instruction": t.format(a=i + 2, b=3 * i + 1, c=7 * i), "input": "", "output": f"answer {i}", "true_domain": theme})
    return rows


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def recipe(tmp_path: Path, pool, process: list, **extra) -> Path:
    """A Data-Juicer recipe over ``pool`` (one worker) exporting to ``tmp_path/out/selected.jsonl``."""
    config = {
        "project_name": "daar-test",
        **({"dataset_path": str(pool)} if pool is not None else {}),
        "export_path": str(tmp_path / "out" / "selected.jsonl"),
        "text_keys": "instruction",
        "np": 1,
        "process": process,
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dj(tool: str, config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``dj-process`` or ``dj-analyze`` on a recipe, offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(Path(sys.executable).parent / tool), "--config", str(config)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """The default model and demo data are cached once per test session, outside the user's cache."""
    if "DAAR_CACHE_DIR" not in os.environ:
        os.environ["DAAR_CACHE_DIR"] = str(tmp_path_factory.mktemp("daar_cache"))
    yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 4-block random Llama with a byte-level BPE tokenizer trained on the test themes."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny_llama")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [r["instruction"] for r in theme_rows(10)] + ["Instruction: Input: Output: none"]
    bpe.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", eos_token="<|end|>")
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def theme_corpus(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "pool.jsonl", theme_rows())


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_model, theme_corpus) -> Path:
    """A bundle trained on the tiny model with all training defaults (seed examples only: fast, deterministic)."""
    from data_juicer_daar.corpus import read_jsonl
    from data_juicer_daar.training import DaarTrainer, TrainConfig

    config = TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, max_epochs=30, folds=3)
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    DaarTrainer(config).fit(read_jsonl(theme_corpus)).save(out)
    return out
