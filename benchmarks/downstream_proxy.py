"""Downstream proxy: fine-tune the default model on each selector's 20 % and compare held-out losses.

This is a proxy, not a benchmark score: a small model, a small pool and a short fine-tune, measured by
the loss on held-out answers of each true domain, not by task accuracy.

How: a stratified held-out set (``heldout`` rows per true domain) is taken out of the demo corpus;
every selector of ``labelled_pool`` picks 20 % of the remaining rows. For each selection and seed the
default model's last ``blocks`` decoder blocks and its final norm are trained (AdamW, seeded row
order) on the answers of the selection's rows, rendered with the project's template, until
``tokens`` tokens have been processed: a fixed token budget, so a selection of long rows sees fewer
rows. The frozen lower blocks run once per row and their output is cached. Reported: the mean
cross-entropy per answer token on the held-out rows of each true domain, their average, the spread
over seeds, and the model before fine-tuning ("base").

Usage:
  python -m benchmarks.downstream_proxy --quick   # this CPU: ~25 min (+ ~20 min once, to fill the pool caches)
  python -m benchmarks.downstream_proxy --quick --pool imbalanced --heldout 25   # the skewed pool
  python -m benchmarks.downstream_proxy           # full mode, meant for a GPU (--device cuda)
Any setting of a mode can be overridden, e.g. ``--quick --seeds 0 --selectors random,DaaR overall``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger
from tqdm import tqdm

from benchmarks.common import RESULTS, machine, save
from benchmarks.eval_pools import POOLS
from benchmarks.labelled_pool import DOMAINS, SELECTORS, load_pool, selections

from data_juicer_daar.backbone import Backbone, pad_batch, pick_device
from data_juicer_daar.models import prepare_default_model, quiet_loading
from data_juicer_daar.text import render


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

    def __post_init__(self) -> None:
        for name in ("blocks", "tokens", "heldout", "batch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 2 or self.lr <= 0 or not self.seeds or not 0 < self.ratio <= 1:
            raise ValueError(f"need max_length >= 2, lr > 0, at least one seed and ratio in (0, 1]; got {self}")


QUICK = ProxyConfig(blocks=2, max_length=256, tokens=32_768, seeds=(0, 1, 2), heldout=40)
FULL = ProxyConfig(blocks=8, max_length=1024, tokens=131_072, seeds=(0, 1, 2), heldout=100, batch_rows=16, lr=1e-4)

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
        self.trunk = Backbone(None, num_layers=total - blocks, device=device)
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

    def reset(self) -> None:
        self.top.load_state_dict(self.initial)

    @torch.no_grad()
    def encode(self, items: dict[int, Item], batch_size: int = 16) -> None:
        """Cache the trunk's output of the rows not cached yet (length-sorted batches)."""
        todo = sorted((i for i in items if i not in self.cache), key=lambda i: -len(items[i][0]))
        pad = self.tokenizer.pad_token_id
        for start in tqdm(range(0, len(todo), batch_size), desc="frozen trunk", unit="batch", leave=False, disable=not todo):
            chunk = todo[start : start + batch_size]
            ids, mask = pad_batch([items[i][0] for i in chunk], pad)
            hidden = self.trunk.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
            for j, i in enumerate(chunk):
                self.cache[i] = hidden[j, : len(items[i][0])].float().cpu()

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
def heldout_loss(model: SplitModel, items: dict[int, Item], rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean answer-token cross-entropy per true domain (and their average) and per source."""
    model.top.eval()
    order = sorted(items, key=lambda i: -len(items[i][0]))
    sums, counts = Counter(), Counter()
    for start in range(0, len(order), 16):
        batch = [(i, items[i]) for i in order[start : start + 16]]
        losses, owner = model.answer_losses(batch)
        losses = losses.cpu()
        for j, (i, _) in enumerate(batch):
            for group in (("domain", rows[i]["source_domain"]), ("source", rows[i]["source"])):
                sums[group] += float(losses[owner == j].sum())
                counts[group] += int((owner == j).sum())
    by_domain = {d: sums["domain", d] / counts["domain", d] for d in DOMAINS}
    by_domain["average"] = float(np.mean(list(by_domain.values())))
    by_source = {g[1]: sums[g] / counts[g] for g in sorted(counts) if g[0] == "source"}
    return {"by_domain": by_domain, "by_source": by_source}


def plan(selected: list[int], items: dict[int, Item], cfg: ProxyConfig, seed: int) -> list[list[int]]:
    """Batches of rows in a seeded order, epoch after epoch, until the token budget is spent."""
    rng, batches, spent = np.random.default_rng(seed), [], 0
    while spent < cfg.tokens:
        order = rng.permutation(selected).tolist()
        for start in range(0, len(order), cfg.batch_rows):
            batches.append(order[start : start + cfg.batch_rows])
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
    members = {d: [i for i, t in enumerate(truth) if t == d] for d in DOMAINS}
    smallest = min(members, key=lambda d: len(members[d]))
    if per_domain >= len(members[smallest]):
        raise ValueError(f"heldout={per_domain} leaves no {smallest} rows to select from (it has {len(members[smallest])})")
    picked = [rng.choice(members[d], size=per_domain, replace=False) for d in DOMAINS]
    return sorted(int(i) for i in np.concatenate(picked))


def relative_gain(losses: dict[str, float], base: dict[str, float]) -> float:
    """Mean over the true domains of the loss reduction relative to the base model: every domain
    counts the same whatever its loss scale, so no one source's answer format dominates."""
    return float(np.mean([(base[d] - losses[d]) / base[d] for d in DOMAINS]))


def summarise(runs: dict[str, list[dict]], base: dict[str, float]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and sample standard deviation over seeds of every held-out loss and the relative gain."""
    table = {}
    for name, per_seed in runs.items():
        keys = [*DOMAINS, "average", "relative_gain"]
        values = np.array([[*(run["heldout"]["by_domain"][k] for k in keys[:-1]), relative_gain(run["heldout"]["by_domain"], base)] for run in per_seed])
        sd = values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(keys))
        table[name] = {k: {"mean": float(m), "sd": float(s)} for k, m, s in zip(keys, values.mean(0), sd)}
    return table


def markdown(base: dict[str, float], table: dict, seeds: int) -> str:
    keys = [*DOMAINS, "average"]
    lines = [
        f"| fine-tuned on | {' | '.join(keys)} | Δ average vs base | relative gain |",
        "|---" + "|---:" * (len(keys) + 2) + "|",
        f"| base (no fine-tune) | {' | '.join(f'{base[k]:.3f}' for k in keys)} | | |",
    ]
    for name, row in table.items():
        cells = " | ".join(f"{row[k]['mean']:.3f} ± {row[k]['sd']:.3f}" for k in keys)
        gain = row["relative_gain"]
        lines.append(f"| {name} | {cells} | {row['average']['mean'] - base['average']:+.3f} | {gain['mean']:.3f} ± {gain['sd']:.3f} |")
    lines.append(
        f"\nHeld-out cross-entropy per answer token (lower is better); relative gain = mean over the four "
        f"true domains of (base - loss) / base (higher is better); mean ± sd over {seeds} seeds."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CPU mode (else the full mode)")
    for field in dataclasses.fields(ProxyConfig):
        kind = {"int": int, "float": float}.get(field.type, str)  # seeds: "0,1"
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=None)
    parser.add_argument("--selectors", default=",".join(SELECTORS), help="comma-separated subset of the selectors")
    parser.add_argument("--pool", default="demo", choices=POOLS, help="labelled pool of eval_pools.py (default: demo)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    args = parser.parse_args()
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(ProxyConfig) if getattr(args, f.name) is not None}
    try:
        if "seeds" in overrides:
            overrides["seeds"] = tuple(int(s) for s in overrides["seeds"].split(","))
        cfg = dataclasses.replace(QUICK if args.quick else FULL, **overrides)
    except ValueError as error:
        parser.error(str(error))
    names = [s.strip() for s in args.selectors.split(",")]
    unknown = sorted(set(names) - set(SELECTORS))
    if unknown:
        parser.error(f"unknown selector(s) {unknown}; known: {', '.join(SELECTORS)}")
    t0 = time.perf_counter()
    stages: dict[str, float] = {}

    pool = load_pool(args.pool)
    try:
        heldout = stratified(pool.truth, cfg.heldout)
    except ValueError as error:
        sys.exit(f"downstream_proxy: {error}")
    among = np.setdiff1d(np.arange(len(pool.rows)), heldout)
    chosen = {name: idx for name, idx in selections(pool, cfg.ratio, among).items() if name in names}
    stages["pool and selections"] = time.perf_counter() - t0

    t = time.perf_counter()
    try:
        model = SplitModel(cfg.blocks, pick_device(args.device))
    except ValueError as error:
        sys.exit(f"downstream_proxy: {error}")
    items = {i: sft_item(model.tokenizer, pool.rows[i], cfg.max_length) for i in range(len(pool.rows))}
    evaluation = {i: items[i] for i in heldout}
    gap = check_split(model, evaluation)
    if gap > (1e-3 if model.trunk.model.dtype == torch.float32 else 3e-2):
        raise RuntimeError(f"the split model's loss differs from the whole model's by {gap:.2%}")
    model.encode(evaluation)
    base = heldout_loss(model, evaluation, pool.rows)
    stages["model, split check, base loss"] = time.perf_counter() - t
    logger.info(f"base held-out loss {base['by_domain']['average']:.4f}; split check gap {gap:.2e}")

    runs: dict[str, list[dict]] = {}
    stages["fine-tunes"] = stages["held-out losses"] = 0.0
    for name, selected in chosen.items():
        for seed in cfg.seeds:
            t = time.perf_counter()
            run = fine_tune(model, plan(selected, items, cfg, seed), items, cfg, seed)
            stages["fine-tunes"] += time.perf_counter() - t
            t = time.perf_counter()
            run.update(seed=seed, heldout=heldout_loss(model, evaluation, pool.rows))
            stages["held-out losses"] += time.perf_counter() - t
            runs.setdefault(name, []).append(run)
            logger.info(f"{name} seed {seed}: {run['rows']} rows, {run['tokens']} tokens -> held-out {run['heldout']['by_domain']['average']:.4f}")

    table = summarise(runs, base["by_domain"])
    mode = "quick" if args.quick else "full"
    result = {
        "machine": machine(),
        "device": model.device,
        "mode": mode,
        "pool": args.pool,
        "config": dataclasses.asdict(cfg),
        "selection_pool_rows": len(among),
        "heldout_rows": len(heldout),
        "heldout_sources": dict(Counter(pool.rows[i]["source"] for i in heldout)),
        "selections": {name: dict(Counter(pool.rows[i]["source"] for i in idx)) for name, idx in chosen.items()},
        "split_check_gap": gap,
        "base": base,
        "runs": runs,
        "summary": table,
        "stages_s": stages,
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    path = save(f"downstream_proxy_{mode}_{args.pool}", result)
    text = markdown(base["by_domain"], table, len(cfg.seeds))
    (RESULTS / f"downstream_proxy_{mode}_{args.pool}.md").write_text(text)
    print(text)
    print(f"wall {result['wall_s']:.0f} s; results: {path}")


if __name__ == "__main__":
    main()
