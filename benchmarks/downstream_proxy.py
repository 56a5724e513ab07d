"""Downstream proxy: fine-tune the default model on each selector's 20 % and compare held-out losses.

This is a proxy, not a benchmark score: a small model, a small pool and a short fine-tune, measured by
the loss on held-out answers of each true domain, not by task accuracy.

Two protocols, one fine-tune each: **in-source** (a stratified held-out set, ``heldout`` rows per true
domain, taken out of the pool before any selector sees it) and **out-of-source**, the paper's (an
evaluation file of sources the pool never holds: the ``held_out`` pool when selecting from ``demo``
or ``imbalanced``). Every selector of ``benchmarks/selectors.py`` picks 20 % of the remaining rows,
blind to the domains, once per seed (seeded selectors draw a new sample per seed). For each
selection and seed the default model's last ``blocks`` decoder blocks and its final norm are trained
(AdamW, row order seeded) on the answers of the selection's rows, rendered with the project's
template, either for a fixed ``tokens`` budget (``--budget tokens``: a selection of long rows sees
fewer rows) or for one epoch (``--budget epoch``: every selected row once, as the paper trains). The
frozen lower blocks run once per row and their output is cached. Reported per protocol: the
relative gain (mean over the true domains of (base - loss) / base) as mean ± sd over seeds, and its
paired difference to the random selection of the same seed.

Usage:
  python -m benchmarks.downstream_proxy --quick    # demo pool, held_out as out-of-source; this CPU: ~1 min per selector and seed
  python -m benchmarks.downstream_proxy --quick --pool imbalanced --heldout 25
  python -m benchmarks.downstream_proxy --quick --pool-file P.jsonl --eval-file E.jsonl --json out.json
  python -m benchmarks.downstream_proxy           # full mode, meant for a GPU (--device cuda)
Any setting of a mode can be overridden, e.g. ``--quick --seeds 0,1 --budget epoch --selectors random,kMQ-style ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger
from tqdm import tqdm

from benchmarks.common import OUT, RESULTS, machine, save
from benchmarks.eval_pools import POOLS, pool_path
from benchmarks.labelled_pool import Pool, load_pool, row_keys, selections
from benchmarks.selectors import DEFAULT_SET, SELECTORS
from data_juicer_daar.method.backbone import Backbone, pad_batch, pick_device
from data_juicer_daar.method.corpus import read_jsonl
from data_juicer_daar.method.models import prepare_default_model, quiet_loading
from data_juicer_daar.method.text import render


@dataclass(frozen=True)
class ProxyConfig:
    blocks: int  # top decoder blocks trained (the rest stay frozen)
    max_length: int  # tokens per row (the prompt is cut from the left so the answer fits)
    tokens: int  # token budget per fine-tune (prompt + answer tokens processed)
    seeds: tuple[int, ...]
    heldout: int  # held-out rows per true domain
    batch_rows: int = 8
    lr: float = 2e-4
    ratio: float = 0.2
    budget: str = "tokens"  # "tokens": stop after ``tokens`` tokens; "epoch": every selected row once
    crn: bool = True  # common random numbers: selectors share the seed's row keys, the fine-tune orders rows by them

    def __post_init__(self) -> None:
        for name in ("blocks", "tokens", "heldout", "batch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 2 or self.lr <= 0 or not self.seeds or not 0 < self.ratio <= 1:
            raise ValueError(f"need max_length >= 2, lr > 0, at least one seed and ratio in (0, 1]; got {self}")
        if self.budget not in ("tokens", "epoch"):
            raise ValueError(f"budget must be 'tokens' or 'epoch', got {self.budget!r}")


QUICK = ProxyConfig(blocks=2, max_length=256, tokens=32_768, seeds=(0, 1, 2, 3, 4), heldout=40)
FULL = ProxyConfig(blocks=8, max_length=1024, tokens=131_072, seeds=(0, 1, 2, 3, 4), heldout=100, batch_rows=16, lr=1e-4)

Item = tuple[list[int], int]  # (token ids of prompt + answer, index where the answer starts)


def sft_item(tokenizer, row: dict, max_length: int) -> Item:
    """Prompt and answer in the project's template (``render``), the answer capped at half the length."""
    prompt = render({"instruction": row.get("instruction"), "input": row.get("input")}).text + "\n\n### Response:\n"
    answer = tokenizer(str(row.get("output") or "").strip(), add_special_tokens=False)["input_ids"][: max_length // 2]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-(max_length - len(answer)) :]
    return prompt_ids + answer, len(prompt_ids)


class SplitModel:
    """The default model cut before its last ``blocks`` blocks: a frozen trunk whose output is cached
    per row, and a trainable top (those blocks + final norm) read out by the frozen tied embedding."""

    def __init__(self, blocks: int, device: str) -> None:
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        model_dir = prepare_default_model()
        config = AutoConfig.from_pretrained(model_dir)
        total = config.num_hidden_layers
        if not 1 <= blocks < total:
            raise ValueError(f"blocks must be in 1..{total - 1}, got {blocks}")
        self.device = device
        # the measuring instrument keeps one number format per device whatever the product's default
        self.trunk = Backbone(None, num_layers=total - blocks, device=device, dtype="bfloat16" if device.startswith("cuda") else "float32")
        self.trunk.model.norm = torch.nn.Identity()  # the top's input is the raw residual stream
        self.tokenizer = self.trunk.tokenizer
        config.num_hidden_layers = blocks
        if isinstance(getattr(config, "layer_types", None), list):
            config.layer_types = config.layer_types[total - blocks :]
        with quiet_loading():
            self.top = AutoModel.from_config(config)
        weights: dict[str, torch.Tensor] = {}
        for path in sorted(model_dir.glob("*.safetensors")):
            weights.update(load_file(path))
        state = {"embed_tokens.weight": weights["model.embed_tokens.weight"], "norm.weight": weights["model.norm.weight"]}
        for name, value in weights.items():
            m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", name)
            if m and int(m[1]) >= total - blocks:
                state[f"layers.{int(m[1]) - (total - blocks)}.{m[2]}"] = value
        self.top.load_state_dict(state)
        self.top.to(device).embed_tokens.requires_grad_(False)
        self.initial = {k: v.detach().clone() for k, v in self.top.state_dict().items()}
        self.cache: dict[int, torch.Tensor] = {}
        # the trunk's outputs outlive the process: each run of a grid would otherwise embed its pools again
        weights_size = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
        trunk = [(model_dir / "config.json").read_text(), weights_size, total - blocks, str(self.trunk.model.dtype), device]
        trunk += [torch.__version__, machine()]
        self.store = OUT / "trunk" / hashlib.sha256(json.dumps(trunk).encode()).hexdigest()[:16]

    def reset(self) -> None:
        self.top.load_state_dict(self.initial)

    def stored(self, ids: list[int]) -> Path:
        """Where the trunk's output of the token sequence ``ids`` is kept between runs."""
        return self.store / f"{hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()[:24]}.npy"

    @torch.no_grad()
    def encode(self, items: dict[int, Item], batch_size: int = 16) -> None:
        """Cache the trunk's output of the rows not cached yet: read from ``store`` when an earlier
        run computed it, else computed (length-sorted batches) and kept there."""
        for i in items:
            path = self.stored(items[i][0])
            if i not in self.cache and path.is_file():
                self.cache[i] = torch.from_numpy(np.load(path))
        todo = sorted((i for i in items if i not in self.cache), key=lambda i: -len(items[i][0]))
        pad = self.tokenizer.pad_token_id
        self.store.mkdir(parents=True, exist_ok=True)
        for start in tqdm(range(0, len(todo), batch_size), desc="frozen trunk", unit="batch", leave=False, disable=not todo):
            chunk = todo[start : start + batch_size]
            ids, mask = pad_batch([items[i][0] for i in chunk], pad)
            hidden = self.trunk.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
            for j, i in enumerate(chunk):
                self.cache[i] = hidden[j, : len(items[i][0])].float().cpu()
                path = self.stored(items[i][0])
                aside = path.with_name(f".{path.name}.{os.getpid()}")
                with aside.open("wb") as f:
                    np.save(f, self.cache[i].numpy())
                aside.replace(path)

    def answer_losses(self, batch: list[tuple[int, Item]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of every answer token of the (cached) rows in ``batch``, and its row."""
        width = max(len(item[0]) for _, item in batch)
        hidden = torch.zeros(len(batch), width, self.top.config.hidden_size)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        rows, positions, targets = [], [], []
        for j, (i, (ids, start)) in enumerate(batch):
            hidden[j, : len(ids)] = self.cache[i]
            mask[j, : len(ids)] = 1
            for p in range(max(start, 1), len(ids)):  # position p - 1 predicts token p
                rows.append(j)
                positions.append(p - 1)
                targets.append(ids[p])
        out = self.top(inputs_embeds=hidden.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
        logits = out[rows, positions] @ self.top.embed_tokens.weight.T  # the tied output embedding
        return F.cross_entropy(logits.float(), torch.tensor(targets, device=self.device), reduction="none"), torch.tensor(rows)


def check_split(model: SplitModel, items: dict[int, Item]) -> float:
    """Largest relative gap between the split model's answer loss and the whole model's on a few rows."""
    from transformers import AutoModelForCausalLM

    with quiet_loading():
        whole = AutoModelForCausalLM.from_pretrained(prepare_default_model(), dtype=model.trunk.model.dtype).to(model.device).eval()
    gaps = []
    with torch.no_grad():
        for i, (ids, start) in list(items.items())[:4]:
            model.encode({i: (ids, start)})
            split, _ = model.answer_losses([(i, (ids, start))])
            logits = whole(input_ids=torch.tensor([ids], device=model.device)).logits[0, start - 1 : len(ids) - 1]
            ref = F.cross_entropy(logits.float(), torch.tensor(ids[start:], device=model.device))
            gaps.append(abs(float(split.mean()) - float(ref)) / float(ref))
    return max(gaps)


@torch.no_grad()
def heldout_loss(model: SplitModel, items: dict[int, Item], rows: dict[int, dict]) -> dict[str, dict[str, float]]:
    """Mean answer-token cross-entropy per true domain (and their average) and per source."""
    model.top.eval()
    order = sorted(items, key=lambda i: -len(items[i][0]))
    sums, counts = Counter(), Counter()
    for start in range(0, len(order), 16):
        batch = [(i, items[i]) for i in order[start : start + 16]]
        losses, owner = model.answer_losses(batch)
        losses = losses.cpu()
        for j, (i, _) in enumerate(batch):
            for group in (("domain", rows[i]["source_domain"]), ("source", rows[i].get("source", "?"))):
                sums[group] += float(losses[owner == j].sum())
                counts[group] += int((owner == j).sum())
    by_domain = {g[1]: sums[g] / counts[g] for g in sorted(counts) if g[0] == "domain"}
    by_domain["average"] = float(np.mean(list(by_domain.values())))
    by_source = {g[1]: sums[g] / counts[g] for g in sorted(counts) if g[0] == "source"}
    return {"by_domain": by_domain, "by_source": by_source}


Options = dict[int, tuple[int, list[int]]]  # evaluation row -> (index of the right option, item key per option)


def option_items(tokenizer, rows: dict[int, dict], max_length: int) -> tuple[dict[int, Item], Options]:
    """One item per candidate answer of the rows that carry ``options`` (keys below every row key)."""
    items: dict[int, Item] = {}
    options: Options = {}
    for j, (key, row) in enumerate(sorted(rows.items())):
        candidates = row.get("options")
        if not isinstance(candidates, list) or row.get("output") not in candidates:
            continue
        ids = [-(10**7) - 16 * j - o for o in range(len(candidates))]
        for item_key, answer in zip(ids, candidates):
            items[item_key] = sft_item(tokenizer, {**row, "output": answer}, max_length)
        options[key] = (candidates.index(row["output"]), ids)
    return items, options


@torch.no_grad()
def mc_accuracy(model: SplitModel, items: dict[int, Item], options: Options) -> float | None:
    """Multiple-choice accuracy in perplexity mode: the model's answer is the option whose answer
    tokens have the lowest mean loss. None when no row carries options."""
    if not options:
        return None
    model.top.eval()
    keys = [k for _, ids in options.values() for k in ids]
    loss: dict[int, float] = {}
    for start in range(0, len(keys), 16):
        batch = [(k, items[k]) for k in keys[start : start + 16]]
        losses, owner = model.answer_losses(batch)
        losses = losses.cpu()
        for j, (k, _) in enumerate(batch):
            loss[k] = float(losses[owner == j].mean())
    right = [int(np.argmin([loss[k] for k in ids])) == answer for answer, ids in options.values()]
    return float(np.mean(right))


def plan(selected: list[int], items: dict[int, Item], cfg: ProxyConfig, seed: int, rows: int) -> list[list[int]]:
    """Batches of rows in a seeded order: epoch after epoch until the token budget is spent, or one
    epoch. With ``cfg.crn`` epoch e orders the rows by the seed's key of stream e (``rows``: the
    pool's size), so two selections of a seed meet their common rows in the same relative order."""
    rng, batches, spent = np.random.default_rng(seed), [], 0

    def order(epoch: int) -> list[int]:
        if cfg.crn:
            keys = row_keys(seed, rows, epoch)
            return sorted(selected, key=lambda i: (keys[i], i))
        return rng.permutation(selected).tolist()

    if cfg.budget == "epoch":
        first = order(1)
        return [first[start : start + cfg.batch_rows] for start in range(0, len(first), cfg.batch_rows)]
    epoch = 0
    while spent < cfg.tokens:
        epoch += 1
        rows_in_order = order(epoch)
        for start in range(0, len(rows_in_order), cfg.batch_rows):
            batches.append(rows_in_order[start : start + cfg.batch_rows])
            spent += sum(len(items[i][0]) for i in batches[-1])
            if spent >= cfg.tokens:
                break
    return batches


def fine_tune(model: SplitModel, batches: list[list[int]], items: dict[int, Item], cfg: ProxyConfig, seed: int) -> dict:
    """Train the top from its initial weights on ``batches``; returns what was processed."""
    model.reset()
    model.top.train()
    torch.manual_seed(seed)
    model.encode({i: items[i] for batch in batches for i in batch})
    params = [p for p in model.top.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    tokens = answer_tokens = 0
    for batch in tqdm(batches, desc="fine-tune", unit="step", leave=False):
        losses, _ = model.answer_losses([(i, items[i]) for i in batch])
        tokens += sum(len(items[i][0]) for i in batch)
        if len(losses):
            optimizer.zero_grad()
            losses.mean().backward()
            optimizer.step()
            answer_tokens += len(losses)
    return {"steps": len(batches), "tokens": tokens, "answer_tokens": answer_tokens, "rows": len({i for b in batches for i in b})}


def stratified(truth: list[str], per_domain: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    members = {d: [i for i, t in enumerate(truth) if t == d] for d in sorted(set(truth))}
    smallest = min(members, key=lambda d: len(members[d]))
    if per_domain >= len(members[smallest]):
        raise ValueError(f"heldout={per_domain} leaves no {smallest} rows to select from (it has {len(members[smallest])})")
    picked = [rng.choice(members[d], size=per_domain, replace=False) for d in members]
    return sorted(int(i) for i in np.concatenate(picked))


def relative_gain(losses: dict[str, float], base: dict[str, float]) -> float:
    """Mean over the true domains of the loss reduction relative to the base model: every domain
    counts the same whatever its loss scale, so no one source's answer format dominates."""
    return float(np.mean([(base[d] - losses[d]) / base[d] for d in base if d != "average"]))


PROTOCOLS = ("in_source", "out_of_source")


def mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def summarise(runs: dict[str, list[dict]], random_name: str) -> dict[str, dict]:
    """Per selector and protocol: relative gain (mean ± sd over seeds) and the paired difference to
    the random selection of the same seed."""
    table = {}
    for name, per_seed in runs.items():
        entry = {}
        for proto in PROTOCOLS:
            gains = [run[proto]["relative_gain"] for run in per_seed]
            paired = [run[proto]["relative_gain"] - ref[proto]["relative_gain"] for run, ref in zip(per_seed, runs[random_name])]
            entry[proto] = mean_sd(gains)
            entry[f"{proto}_vs_random"] = mean_sd(paired)
        entry["rows_seen"] = mean_sd([run["rows"] for run in per_seed])
        table[name] = entry
    return table


def markdown(table: dict, default: str, cfg: ProxyConfig) -> str:
    lines = [
        "| fine-tuned on | in-source gain | paired Δ vs random | out-of-source gain | paired Δ vs random | rows seen |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in sorted(table.items(), key=lambda kv: -kv[1]["out_of_source"]["mean"]):
        cells = [
            f"{row[k]['mean']:+.4f} ± {row[k]['sd']:.4f}"
            for k in ("in_source", "in_source_vs_random", "out_of_source", "out_of_source_vs_random")
        ]
        label = f"**{name}** (shipped recipe)" if name == default else name
        lines.append(f"| {label} | {' | '.join(cells)} | {row['rows_seen']['mean']:.0f} |")
    budget = f"{cfg.tokens:,} tokens" if cfg.budget == "tokens" else "one epoch of the selection"
    lines.append(
        f"\nRelative gain = mean over the true domains of (base - loss) / base on held-out answers (higher is "
        f"better); mean ± sd over {len(cfg.seeds)} seeds; paired Δ = the selector's gain minus random's of the same "
        f"seed. Budget: {budget} per fine-tune."
    )
    return "\n".join(lines) + "\n"


def recipe_selector() -> str:
    """The selector the shipped recipe (``recipes/daar_select.yaml``) runs, by its benchmark name
    (what the recipe leaves out, the op's declared defaults)."""
    import yaml

    from benchmarks.common import ROOT
    from benchmarks.selectors import daar_name, share_name
    from data_juicer_daar.method.selection import TopkSpec
    from data_juicer_daar.options import declared

    ops = yaml.safe_load((ROOT / "recipes" / "daar_select.yaml").read_text())["process"]
    params = next(p for op in ops for name, p in op.items() if name == "daar_topk_reward_selector")
    rule = {k: params.get(k, declared(TopkSpec, k)) for k in ("mode", "coverage", "score_source", "share_exponent", "rate_cap")}
    tempered = rule["share_exponent"] or rule["rate_cap"]
    if tempered and rule["mode"] == "balanced" and rule["coverage"] and rule["score_source"] == "probe_entropy":
        return share_name(rule["share_exponent"], rule["rate_cap"])
    return daar_name(rule["mode"], bool(rule["coverage"]), rule["score_source"])


def rerender(path: Path) -> None:
    """Rewrite a stored result's table, naming the selector the shipped recipe runs now."""
    result = json.loads(path.read_text())
    result["default"] = recipe_selector()
    path.write_text(json.dumps(result, indent=2))
    text = markdown(result["selectors"], result["default"], ProxyConfig(**{**result["config"], "seeds": tuple(result["config"]["seeds"])}))
    path.with_suffix(".md").write_text(text)
    print(text)


def merge(paths: list[Path], name: str) -> None:
    """One table from results of the same setup run with other seeds: the selectors every file
    holds, their runs pooled by seed (written as ``results/<name>.json|md``)."""
    from benchmarks.common import save

    results = [json.loads(p.read_text()) for p in paths]
    names = [n for n in results[0]["runs"] if all(n in r["runs"] for r in results)]
    runs = {n: sorted((run for r in results for run in r["runs"][n]), key=lambda run: run["seed"]) for n in names}
    seeds = [run["seed"] for run in runs[results[0]["random"]]]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"downstream_proxy: the files share seeds {sorted(s for s in set(seeds) if seeds.count(s) > 1)}")
    cfg = ProxyConfig(**{**results[0]["config"], "seeds": tuple(seeds)})
    merged = {
        **{k: results[0][k] for k in ("machine", "device", "mode", "pool", "eval", "default", "random")},
        "config": {**results[0]["config"], "seeds": seeds},
        "merged_from": [p.name for p in paths],
        "selectors": summarise(runs, results[0]["random"]),
        "runs": runs,
    }
    save(name, merged)
    text = markdown(merged["selectors"], merged["default"], cfg)
    (Path(__file__).parent / "results" / f"{name}.md").write_text(text)
    print(text)


def yes_no(text: str) -> bool:
    """argparse type of a yes/no setting (``--crn false``)."""
    if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "yes", "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CPU mode (else the full mode)")
    for field in dataclasses.fields(ProxyConfig):
        kind = {"int": int, "float": float, "bool": yes_no}.get(field.type, str)  # seeds: "0,1"
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=None)
    parser.add_argument(
        "--selectors", default=None, help="comma-separated subset of the selectors (default: all but the upstream k-means ones)"
    )
    parser.add_argument("--pool", default="demo", choices=POOLS, help="labelled pool of eval_pools.py (default: demo)")
    parser.add_argument("--pool-file", default=None, help="any JSONL pool whose rows carry source_domain (instead of --pool)")
    parser.add_argument("--eval-file", default=None, help="out-of-source JSONL with source_domain (default: the held_out pool)")
    parser.add_argument("--json", default=None, help="also write the summary as JSON to this path")
    parser.add_argument("--name", default=None, help="results file name (default: downstream_proxy_<mode>_<pool>[_epoch])")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    parser.add_argument(
        "--merge",
        default=None,
        metavar="A.json,B.json",
        help="only pool results of the same setup run with other seeds into one table (--name)",
    )
    parser.add_argument(
        "--render",
        default=None,
        metavar="RESULTS_JSON",
        help="only rewrite that result's table and default (the shipped recipe may have changed)",
    )
    return parser


def settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[ProxyConfig, list[str]]:
    """The run's config and the selectors it compares (random and the recipe's first), checked."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(ProxyConfig) if getattr(args, f.name) is not None}
    try:
        if "seeds" in overrides:
            overrides["seeds"] = tuple(int(s) for s in overrides["seeds"].split(","))
        cfg = dataclasses.replace(QUICK if args.quick else FULL, **overrides)
    except ValueError as error:
        parser.error(str(error))
    shipped = recipe_selector()
    names = [s.strip() for s in args.selectors.split(",")] if args.selectors else [n for n in SELECTORS if n in DEFAULT_SET or n == shipped]
    unknown = sorted(set(names) - set(SELECTORS))
    if unknown:
        parser.error(f"unknown selector(s) {unknown}; known: {', '.join(SELECTORS)}")
    for path in (args.pool_file, args.eval_file):
        if path and not Path(path).is_file():
            parser.error(f"no such file: {path}")
    return cfg, list(dict.fromkeys(["random", recipe_selector(), *names]))


@dataclass
class Setup:
    """What every fine-tune shares: the pool and its held-out rows, the split model, the evaluation
    sets and their loss before any fine-tune."""

    pool: Pool
    eval_rows: list[dict]
    heldout: list[int]
    among: np.ndarray  # pool rows a selection may use
    model: SplitModel
    items: dict[int, Item]
    sets: dict[str, tuple[dict[int, Item], dict[int, dict]]]  # protocol -> (items, rows)
    options: Options  # out-of-source rows with candidate answers (their items are in ``items``)
    base: dict[str, dict]
    gap: float  # the split check's loss gap

    def judge(self, run: dict) -> dict:
        """``run`` with both protocols' held-out losses, relative gains and (out-of-source) MC accuracy."""
        for proto, (its, rows) in self.sets.items():
            losses = heldout_loss(self.model, its, rows)
            run[proto] = {**losses, "relative_gain": relative_gain(losses["by_domain"], self.base[proto]["by_domain"])}
        run["out_of_source"]["mc_accuracy"] = mc_accuracy(self.model, self.items, self.options)
        return run

    def fine_tune(self, selected: list[int], cfg: ProxyConfig, seed: int) -> dict:
        """One fine-tune on the pool rows ``selected``, judged on both protocols."""
        return self.judge(fine_tune(self.model, plan(selected, self.items, cfg, seed, len(self.pool.rows)), self.items, cfg, seed))


def prepare(
    pool_spec: str | Path,
    eval_path: Path,
    cfg: ProxyConfig,
    device: str | None,
    stages: dict[str, float],
    train_args: tuple[str, ...] = (),
    choices_path: Path | None = None,
) -> Setup:
    """Load the pool (scored by the bundle trained on it with ``train_args``), hold out its in-source
    rows, split the model and measure the base losses (``choices_path``: rows with ``options`` for the
    multiple-choice accuracy; default: the evaluation file's own)."""
    t = time.perf_counter()
    pool = load_pool(pool_spec, train_args)
    eval_rows = read_jsonl(eval_path)
    if any("source_domain" not in r for r in pool.rows + eval_rows):
        sys.exit("downstream_proxy: every pool and evaluation row needs a source_domain field")
    try:
        heldout = stratified(pool.truth, cfg.heldout)
    except ValueError as error:
        sys.exit(f"downstream_proxy: {error}")
    among = np.setdiff1d(np.arange(len(pool.rows)), heldout)
    stages["pool"] = time.perf_counter() - t

    t = time.perf_counter()
    try:
        model = SplitModel(cfg.blocks, pick_device(device))
    except ValueError as error:
        sys.exit(f"downstream_proxy: {error}")
    items = {i: sft_item(model.tokenizer, pool.rows[i], cfg.max_length) for i in range(len(pool.rows))}
    # evaluation rows get negative keys, so their cached trunk outputs never collide with pool rows
    outside = {-1 - j: sft_item(model.tokenizer, r, cfg.max_length) for j, r in enumerate(eval_rows)}
    sets = {
        "in_source": ({i: items[i] for i in heldout}, {i: pool.rows[i] for i in heldout}),
        "out_of_source": (outside, {-1 - j: r for j, r in enumerate(eval_rows)}),
    }
    choice_rows = sets["out_of_source"][1] if choices_path is None else {-(10**6) - j: r for j, r in enumerate(read_jsonl(choices_path))}
    choice_items, options = option_items(model.tokenizer, choice_rows, cfg.max_length)
    items.update(choice_items)
    gap = check_split(model, sets["in_source"][0])
    if gap > (1e-3 if model.trunk.model.dtype == torch.float32 else 3e-2):
        raise RuntimeError(f"the split model's loss differs from the whole model's by {gap:.2%}")
    base = {}
    for proto, (its, rows) in sets.items():
        model.encode(its)
        base[proto] = heldout_loss(model, its, rows)
    model.encode(choice_items)
    base["out_of_source"]["mc_accuracy"] = mc_accuracy(model, items, options)
    stages["model, split check, base loss"] = time.perf_counter() - t
    logger.info(
        f"base loss in-source {base['in_source']['by_domain']['average']:.4f}, out-of-source "
        f"{base['out_of_source']['by_domain']['average']:.4f}, multiple-choice accuracy {base['out_of_source']['mc_accuracy']}"
    )
    return Setup(pool, eval_rows, heldout, among, model, items, sets, options, base, gap)


def run_seeds(setup: Setup, cfg: ProxyConfig, names: list[str], stages: dict[str, float]) -> tuple[dict, dict]:
    """One fine-tune per selector and seed, each judged on both evaluation sets: (runs, selections)."""
    runs: dict[str, list[dict]] = {}
    chosen: dict[str, dict[int, list[int]]] = {}
    stages["fine-tunes"] = 0.0
    for seed in cfg.seeds:
        picked = selections(setup.pool, cfg.ratio, setup.among, names, seed, crn=cfg.crn)
        for name in names:
            chosen.setdefault(name, {})[seed] = picked[name]
            t = time.perf_counter()
            run = setup.fine_tune(picked[name], cfg, seed)
            stages["fine-tunes"] += time.perf_counter() - t
            run["seed"] = seed
            runs.setdefault(name, []).append(run)
            logger.info(
                f"seed {seed} {name}: {run['rows']} rows -> gain in-source {run['in_source']['relative_gain']:.4f}, "
                f"out-of-source {run['out_of_source']['relative_gain']:.4f}"
            )
    return runs, chosen


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.merge:
        merge([Path(p) for p in args.merge.split(",")], args.name or "downstream_proxy_merged")
        return
    if args.render:
        rerender(Path(args.render))
        return
    cfg, names = settings(parser, args)
    random_name, default = names[0], names[1]
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    eval_path = Path(args.eval_file) if args.eval_file else pool_path("held_out")
    setup = prepare(Path(args.pool_file) if args.pool_file else args.pool, eval_path, cfg, args.device, stages)
    runs, chosen = run_seeds(setup, cfg, names, stages)

    table = summarise(runs, random_name)
    mode = "quick" if args.quick else "full"
    pool_name = Path(args.pool_file).stem if args.pool_file else args.pool
    stem = args.name or f"downstream_proxy_{mode}_{pool_name}{'_epoch' if cfg.budget == 'epoch' else ''}"
    pool = setup.pool
    result = {
        "machine": machine(),
        "device": setup.model.device,
        "mode": mode,
        "pool": args.pool_file or args.pool,
        "eval": args.eval_file or "held_out",
        "config": dataclasses.asdict(cfg),
        "default": default,
        "random": random_name,
        "selectors": table,
        "selection_pool_rows": len(setup.among),
        "heldout_rows": len(setup.heldout),
        "eval_rows": len(setup.eval_rows),
        "selections": {
            name: {s: dict(Counter(pool.rows[i].get("source", "?") for i in idx)) for s, idx in per.items()} for name, per in chosen.items()
        },
        "split_check_gap": setup.gap,
        "base": setup.base,
        "runs": runs,
        "stages_s": stages,
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    path = save(stem, result)
    if args.json:
        Path(args.json).write_text(json.dumps({k: result[k] for k in ("default", "random", "selectors")}, indent=2))
    text = markdown(table, default, cfg)
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)
    print(f"wall {result['wall_s']:.0f} s; results: {path}")


if __name__ == "__main__":
    main()
