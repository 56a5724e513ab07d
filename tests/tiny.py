"""A tiny real model and themed rows, built locally: the tests' fixtures, shared with the Ray cluster
benchmark (a fast stand-in for the default model there)."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# four themes with distinct vocabularies, so a tiny model's clusters are learnable
THEMES = {
    "mathematics": ["Solve {a} + {b} * x = {c} for x.", "What is {a} percent of {b}?", "Compute the area of a square with side {a}."],
    "coding": [
        "Write a Python function that returns the sum of {a} and {b}.",
        "def f{a}(x):\n    return x * {b}",
        "Fix the bug: for i in range({a}) print(i)",
    ],
    "reasoning": [
        "All cats are animals. Tom{a} is a cat. Is Tom{a} an animal?",
        "If it rains the match stops; it did not stop on day {a}. Did it rain?",
        "Anna is taller than Ben{a}. Who is shorter?",
    ],
    "common_sense": [
        "Why do people carry umbrellas on day {a}?",
        "Where do you keep milk so it stays fresh for {a} days?",
        "What do you wear when it is {a} degrees and snowing?",
    ],
}


def theme_rows(n_per_theme: int = 30) -> list[dict]:
    rows = []
    for theme, templates in THEMES.items():
        for i in range(n_per_theme):
            t = templates[i % len(templates)]
            rows.append(
                {
                    "id": f"{theme}-{i}",
                    "instruction": t.format(a=i + 2, b=3 * i + 1, c=7 * i),
                    "input": "",
                    "output": f"answer {i}",
                    "true_domain": theme,
                }
            )
    return rows


def build_tiny_model(out: Path) -> Path:
    """A 4-block random Llama with a byte-level BPE tokenizer trained on the themes, saved to ``out``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

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
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out
