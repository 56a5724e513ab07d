"""Stage 1a: model-written domain examples (warm-up, then rejection-sampled diversity).

For each domain the instruct model (through its chat template) first writes ``warmup`` examples;
then, in rounds, it is shown ``window`` random accepted examples as counter-examples and asked for a
new one. A candidate is accepted only if it parses and its embedding-layer vector has cosine
similarity below ``tau`` to every accepted example. The domain's trusted seed examples start the
accepted set. Generation stops at ``n_per_domain`` accepted or after ``max_attempts`` candidates.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from loguru import logger
from tqdm import tqdm

from ..options import Number, Settings, option
from .cpu_share import CpuShare
from .domains import Domain
from .models import cache_dir, model_fingerprint, quiet_loading, resolve_model
from .text import TEMPLATE_VERSION, render

if TYPE_CHECKING:
    from .backbone import Backbone
from ..errors import ConfigError

_FIELD = re.compile(r"^\W*(instructions?|input|output|answer|response)\W*?:\s*(.*)$", re.IGNORECASE)
_ALIASES = {"instructions": "instruction", "answer": "output", "response": "output"}
ANSWER_PREFIX = "Instruction:"
_NONE = {"", "none", "n/a", "<none>", "null", "-", "(none)"}


@dataclass
class SynthesisConfig(Settings):
    """How ``--synthesize`` asks the instruct model for more examples per domain."""

    warmup: int = option(5, check=Number(integer=True, low=0), help="examples written per domain before rejection sampling")
    # paper: 10 vs 30 examples per domain barely differs
    n_per_domain: int = option(20, check=Number(integer=True, low=1), help="accepted examples per domain, seeds included")
    tau: float = option(
        0.85,
        check=Number(low=0, high=1, open_low=True),
        help="largest cosine to an accepted example for a new one to be accepted (paper: 0.9 for math)",
    )
    window: int = option(3, check=Number(integer=True, low=1), help="accepted examples shown as counter-examples per request")
    max_attempts: int = option(16, check=Number(integer=True, low=0), help="candidates per domain after warm-up (bounds the time spent)")
    batch: int = option(
        8, flag="--gen-batch", check=Number(integer=True, low=1), help="candidates generated together (one batched generate call)"
    )
    max_new_tokens: int = option(128, check=Number(integer=True, low=1), help="tokens generated per candidate at most")
    temperature: float = option(0.9, check=Number(low=0, open_low=True), help="sampling temperature of the generation")
    top_p: float = option(0.95, check=Number(low=0, high=1, open_low=True), help="nucleus sampling mass of the generation")


@dataclass
class DomainSynthesis:
    """What synthesis produced for one domain."""

    name: str
    examples: list[dict] = field(default_factory=list)  # accepted: seeds first, then generated
    origins: list[str] = field(default_factory=list)  # "seed" | "warmup" | "augment", per example
    generated: int = 0  # candidates the model wrote
    malformed: int = 0  # candidates that did not parse
    too_similar: int = 0  # parsed but rejected by the cosine threshold

    @property
    def acceptance(self) -> float:
        accepted = sum(o != "seed" for o in self.origins)
        return accepted / self.generated if self.generated else 0.0

    def summary(self) -> dict:
        return {
            "seeds": self.origins.count("seed"),
            "accepted": sum(o != "seed" for o in self.origins),
            "generated": self.generated,
            "malformed": self.malformed,
            "too_similar": self.too_similar,
            "acceptance_rate": round(self.acceptance, 4),
        }


def parse_example(answer: str) -> dict | None:
    """Parse "Instruction: ... Input: ... Output: ..." (any case, markdown allowed); None if malformed."""
    found: dict[str, list[str]] = {}
    current = None
    for line in answer.splitlines():
        match = _FIELD.match(line.strip())
        if match:
            key = _ALIASES.get(match.group(1).lower(), match.group(1).lower())
            if key in found:  # a second example started: keep only the first
                break
            current = key
            found[current] = [match.group(2).strip(" *")]
        elif current is not None:
            found[current].append(line.rstrip())
    example = {k: "\n".join(v).strip() for k, v in found.items()}
    if not example.get("instruction") or example.get("output", "").lower() in _NONE:
        return None
    if example.get("input", "").lower() in _NONE:
        example["input"] = ""
    return {"instruction": example["instruction"], "input": example.get("input", ""), "output": example["output"]}


def _format_example(example: dict) -> str:
    return f"Instruction: {example['instruction']}\nInput: {example.get('input') or 'none'}\nOutput: {example['output']}"


def build_prompt(domain: Domain, others: list[Domain], shown: list[dict]) -> str:
    """The request for one example of ``domain``, avoiding ``others`` and differing from ``shown``."""
    lines = [
        f"Write one new training example about {domain.name.replace('_', ' ')}: {domain.description}",
        "It must not be about " + ", ".join(o.name.replace("_", " ") for o in others) + ".",
    ]
    if shown:
        lines.append("It must be different from these examples:\n")
        lines.extend(_format_example(e) + "\n" for e in shown)
    lines.append("Use exactly this format:\nInstruction: <the task>\nInput: <context, or none>\nOutput: <the answer>")
    return "\n".join(lines)


class Generator:
    """Batched sampling from the instruct model through its chat template."""

    def __init__(self, model_dir, device: str, config: SynthesisConfig, trust_remote_code: bool = False) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"  # generation continues from the right end
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise ConfigError(f"the instruct model at {model_dir} has no chat template; drop --synthesize or pass another --instruct-model")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        with quiet_loading():
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, trust_remote_code=trust_remote_code)
        self.model.eval().to(device)
        self.share = CpuShare() if device == "cpu" else None  # generation stalls worst on oversubscribed cores

    @torch.inference_mode()
    def __call__(self, prompts: list[str]) -> list[str]:
        if self.share is not None:
            self.share.apply("synthesis")
        chats = [[{"role": "user", "content": p}] for p in prompts]
        texts = self.tokenizer.apply_chat_template(chats, add_generation_prompt=True, tokenize=False)
        # the answer is started for the model: small models follow a format far better this way
        enc = self.tokenizer([t + ANSWER_PREFIX for t in texts], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.device)
        out = self.model.generate(
            **enc,
            max_new_tokens=self.config.max_new_tokens,
            do_sample=True,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        answers = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        return [ANSWER_PREFIX + a for a in answers]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class _Accepted:
    """One domain's accepted examples, with their unit embedding-layer vectors for the rejection test."""

    def __init__(self, name: str, embed: Callable[[list[str]], np.ndarray], tau: float) -> None:
        self.result = DomainSynthesis(name)
        self.vectors: list[np.ndarray] = []
        self.embed, self.tau = embed, tau

    def __len__(self) -> int:
        return len(self.result.examples)

    def offer(self, example: dict, origin: str) -> bool:
        """Accept ``example`` unless it has no text or (not a seed) it is too close to an accepted one."""
        text = render(example).text
        if not text:
            return False
        vec = _unit(self.embed([text])[0])
        if origin != "seed" and self.vectors and float(np.max(np.stack(self.vectors) @ vec)) >= self.tau:
            self.result.too_similar += 1
            return False
        self.vectors.append(vec)
        self.result.examples.append(example)
        self.result.origins.append(origin)
        return True


def _requests(domain: Domain, others: list[Domain], accepted: _Accepted, count: int, window: int, rng: np.random.Generator) -> list[str]:
    """``count`` prompts, each showing up to ``window`` accepted examples drawn at random (none: ``window`` 0)."""
    prompts = []
    for _ in range(count):
        k = min(window, len(accepted))
        picks = rng.choice(len(accepted), size=k, replace=False) if k else []
        prompts.append(build_prompt(domain, others, [accepted.result.examples[i] for i in picks]))
    return prompts


def _take(accepted: _Accepted, answers: list[str], origin: str, wanted: int, bar: tqdm) -> None:
    """Parse the model's answers and offer each (in augmentation only while fewer than ``wanted`` are accepted)."""
    for answer in answers:
        accepted.result.generated += 1
        example = parse_example(answer)
        if example is None:
            accepted.result.malformed += 1
        elif (origin == "warmup" or len(accepted) < wanted) and accepted.offer(example, origin):
            bar.update(1)


def _generate(
    domain: Domain,
    others: list[Domain],
    accepted: _Accepted,
    generate: Callable[[list[str]], list[str]],
    config: SynthesisConfig,
    rng: np.random.Generator,
) -> None:
    """Warm-up (``warmup`` requests, no counter-examples), then rounds of at most ``batch`` requests
    until ``n_per_domain`` are accepted or ``max_attempts`` requests were made."""
    bar = tqdm(total=config.n_per_domain, initial=len(accepted), desc=f"synthesis {domain.name}", leave=False)
    if config.warmup:
        _take(accepted, generate(_requests(domain, others, accepted, config.warmup, 0, rng)), "warmup", config.n_per_domain, bar)
    attempts = 0
    while len(accepted) < config.n_per_domain and attempts < config.max_attempts:
        count = min(config.batch, config.max_attempts - attempts)
        attempts += count
        _take(accepted, generate(_requests(domain, others, accepted, count, config.window, rng)), "augment", config.n_per_domain, bar)
    bar.close()


def synthesize(
    domains: list[Domain],
    generate: Callable[[list[str]], list[str]] | None,
    embed: Callable[[list[str]], np.ndarray],
    config: SynthesisConfig,
    seed: int,
) -> list[DomainSynthesis]:
    """Run stage 1a for every domain: its seed examples, then (unless ``generate`` is None) generated ones."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    results = []
    for domain in domains:
        accepted = _Accepted(domain.name, embed, config.tau)
        for example in domain.examples:
            accepted.offer(dict(example), "seed")
        if generate is not None:
            _generate(domain, [d for d in domains if d is not domain], accepted, generate, config, rng)
        if not len(accepted):
            hint = "add examples to the domain file" if generate else "add examples to the domain file, or pass --synthesize"
            raise ConfigError(f"domain {domain.name!r} has no usable examples; {hint}")
        logger.info(f"synthesis {domain.name}: {accepted.result.summary()}")
        results.append(accepted.result)
    return results


def synthesis_key(
    domains: list[Domain], backbone: Backbone, instruct_dir: Path, config: SynthesisConfig, max_length: int, seed: int
) -> str:
    """What the synthetic examples depend on: models, domains, options, seed (not the pool)."""
    payload = {
        "backbone": backbone.fingerprint,
        "instruct": model_fingerprint(instruct_dir),
        "domains": [d.as_dict() for d in domains],
        "synthesis": asdict(config),
        "max_length": max_length,
        "template": TEMPLATE_VERSION,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_cached(path: Path) -> list[DomainSynthesis] | None:
    try:
        synth = [DomainSynthesis(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        logger.warning(f"cached synthetic examples {path} are unreadable: generating them again")
        return None
    logger.info(f"reusing cached synthetic examples {path} (same models, domains and options)")
    return synth


@dataclass(frozen=True)
class Examples:
    """Stage 1a's result: each domain's accepted examples, and the manifest's synthesis entry."""

    per_domain: list[DomainSynthesis]
    entry: dict


def examples_per_domain(
    domains: list[Domain],
    backbone: Backbone,
    config: SynthesisConfig,
    enabled: bool,
    instruct_model: str | None,
    max_length: int,
    seed: int,
) -> Examples:
    """Each domain's accepted examples and the manifest's synthesis entry: the domain file's seeds
    alone unless ``enabled``; then generated ones too, cached by their key
    (``<cache>/synthesis/<key>.json``), so training on another pool with the same model, domains
    and options generates nothing."""
    embed = lambda texts: backbone.encode(texts).embeddings  # noqa: E731
    if not enabled:
        logger.info("synthesis off (default): the domain file's examples anchor the pseudo-domains; --synthesize generates more")
        synth = synthesize(domains, None, embed, config, seed)
        return Examples(synth, {"enabled": False, "per_domain": {s.name: s.summary() for s in synth}})
    instruct_dir = resolve_model(instruct_model) if instruct_model else backbone.model_dir
    key = synthesis_key(domains, backbone, instruct_dir, config, max_length, seed)
    path = cache_dir() / "synthesis" / f"{key}.json"
    synth = _read_cached(path)
    if synth is None:
        synth = synthesize(domains, Generator(instruct_dir, backbone.device, config), embed, config, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps([asdict(s) for s in synth], ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    return Examples(synth, {"enabled": True, "key": key, "per_domain": {s.name: s.summary() for s in synth}})
