"""The selection grid: which share rule the selector ships with, measured one fine-tune at a time.

A cell is one fine-tune of the downstream proxy (``benchmarks/downstream_proxy.py``, quick mode):
(condition, selector, seed). Each cell writes one small JSON under ``benchmarks/results/grid/``,
keyed by everything that changes its result (the pool's and evaluation file's hashes, the bundle's
``heads_id``, the proxy settings, the selector's name, which fixes its definition, and the seed);
a rerun skips the cells that are done, so a measurement longer than a session goes on in the next.

Conditions (all four are tuned on; the report gives each one's pseudo-domain agreement):
  unseen_skewed    (a) 800 rows of the held_out sources, 60/25/10/5 % (common sense / reasoning /
                   mathematics / coding): pseudo-domains about as wrong as on a user's unseen data
  imbalanced_weak  (b) the imbalanced pool scored by a bundle with a weaker label-free cut
                   (``--pseudo-labels kmeans_cosine``, agreement about 0.70): the same failure on
                   a pool whose sources the project knows
  demo             (c) the demo corpus (even)
  unseen_even      (d) the held_out pool (even, unseen sources)
  imbalanced       the check after the decision: the imbalanced pool with its right pseudo-domains
                   (agreement 0.99+), where a balancing rule must keep a real gain
Each condition is judged in-source on held-out rows of the pool and out-of-source on a set of
sources the pool does not hold: the ``held_out`` pool for pools of the demo corpus's sources, the
``known_sources`` set (the demo corpus's sources) for pools of held_out sources. The multiple-choice
accuracy is read on the ``outside`` set's rows with options (sources none of the pools hold).

Usage:
  python -m benchmarks.grid run --conditions unseen_skewed --selectors first --seeds 0-4 [--minutes 60] [--crn false]
  python -m benchmarks.grid report    # every table from the cells present (results/grid.md)
  python -m benchmarks.grid screen    # rows per true domain and source for every rule, no fine-tune (results/grid_screen.md)
``--selectors`` takes names of ``benchmarks/selectors.py`` or a set of ``SETS`` (comma-separated);
``round2`` is read from the cells: the baselines and round 1's two best candidates (``finalists``);
``check`` is random, the shipped rule and the rule round 2 chose (``chosen``).
The report ends with the decision rule applied to round 2 (``decision``) and its check on ``imbalanced``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger

from benchmarks.common import RESULTS, machine
from benchmarks.downstream_proxy import PROTOCOLS, QUICK, ProxyConfig, Setup, prepare, yes_no
from benchmarks.eval_pools import pool_path
from benchmarks.labelled_pool import hungarian_accuracy, load_pool, pool_bundle, selections
from benchmarks.selectors import RATE_CAPS, SELECTORS, SHARE_EXPONENTS, daar_name, share_name

CELLS = RESULTS / "grid"
DOMAINS = ("common_sense", "reasoning", "mathematics", "coding")


@dataclass(frozen=True)
class Condition:
    pool: str  # a pool of eval_pools.py
    heldout: int  # in-source rows per true domain
    eval: str  # the out-of-source set
    train_args: tuple[str, ...] = ()  # how its bundle is trained, beyond the defaults


CHOICES = "outside"  # the multiple-choice rows
CONDITIONS = {
    "unseen_skewed": Condition("held_out_skewed", heldout=10, eval="known_sources"),
    "imbalanced_weak": Condition("imbalanced", heldout=25, eval="held_out", train_args=("--pseudo-labels", "kmeans_cosine")),
    "demo": Condition("demo", heldout=40, eval="held_out"),
    "unseen_even": Condition("held_out", heldout=40, eval="known_sources"),
    # the check after the decision: the project's imbalanced pool with its right pseudo-domains (agreement 0.99+)
    "imbalanced": Condition("imbalanced", heldout=25, eval="held_out"),
}

RANDOM = "random"
KMQ = "kMQ-style (bundle sub-domains)"
SHIPPED = daar_name("balanced", True, "probe_entropy")
ORACLE = "DaaR balanced + coverage on the true domains (oracle)"
#: named sets of selectors
SETS = {
    "first": [RANDOM, KMQ, SHIPPED],
    "screen": [RANDOM, KMQ, SHIPPED, *(share_name(a, c) for a in SHARE_EXPONENTS for c in RATE_CAPS)],
    # round 1, chosen from the composition screen before any of its fine-tunes ran (benchmarks/README.md, section 11)
    "round1": [
        RANDOM,
        KMQ,
        SHIPPED,
        share_name(0.0, 1.5),
        share_name(0.5, 1.5),
        share_name(0.5, None),
        share_name(1.0, None),
        share_name(0.5, 1.5, inside="random"),
    ],
    "oracle": [ORACLE],
}
BASELINES = (RANDOM, KMQ, SHIPPED)
#: the conditions and the seeds each round needs before it decides
ROUND1 = (("unseen_skewed", "imbalanced_weak", "demo"), 6)
ROUND2 = (("unseen_skewed", "imbalanced_weak", "demo", "unseen_even"), 10)
#: where the chosen rule must keep a real gain (out-of-source Δ above one standard error), else kMQ-style ships
LABELLED = "imbalanced"


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def setting(name: str, cfg: ProxyConfig) -> dict:
    """What every cell of a condition shares, and so keys it (the seed and selector aside)."""
    cond = CONDITIONS[name]
    bundle = pool_bundle(cond.pool, cond.train_args)
    proxy = {k: v for k, v in dataclasses.asdict(dataclasses.replace(cfg, heldout=cond.heldout)).items() if k != "seeds"}
    return {
        "condition": name,
        "pool": file_hash(pool_path(cond.pool)),
        "eval": file_hash(pool_path(cond.eval)),
        "choices": file_hash(pool_path(CHOICES)),
        "bundle_manifest": json.loads((bundle / "manifest.json").read_text())["manifest_sha256"][:16],
        "train_args": list(cond.train_args),
        "proxy": proxy,
    }


def cell_path(shared: dict, selector: str, seed: int) -> Path:
    key = hashlib.sha256(json.dumps({**shared, "selector": selector, "seed": seed}, sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", selector.lower()).strip("-")
    crn = "" if shared["proxy"]["crn"] else "-nocrn"
    return CELLS / shared["condition"] / f"{slug}{crn}-s{seed}-{key}.json"


def write_cell(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def run(conditions: list[str], names: list[str], seeds: list[int], cfg: ProxyConfig, minutes: float | None, device: str | None) -> int:
    """Run the cells not measured yet; returns how many were run. Stops before a cell that would
    start after ``minutes``."""
    start, done = time.monotonic(), 0
    for name in conditions:
        shared = setting(name, cfg)
        todo = [(seed, sel) for seed in seeds for sel in names if not cell_path(shared, sel, seed).is_file()]
        logger.info(f"grid {name}: {len(seeds) * len(names) - len(todo)} cells done, {len(todo)} to run")
        if not todo:
            continue
        cond = CONDITIONS[name]
        stages: dict[str, float] = {}
        local = dataclasses.replace(cfg, heldout=cond.heldout)
        setup: Setup = prepare(cond.pool, pool_path(cond.eval), local, device, stages, cond.train_args, pool_path(CHOICES))
        for seed in sorted({s for s, _ in todo}):
            wanted = [sel for s, sel in todo if s == seed]
            picked = selections(setup.pool, cfg.ratio, setup.among, wanted, seed, crn=cfg.crn)
            for sel in wanted:
                if minutes is not None and time.monotonic() - start > 60 * minutes:
                    logger.info(f"grid: {minutes} minutes are up after {done} cells; the rest runs next time")
                    return done
                t = time.perf_counter()
                result = setup.fine_tune(picked[sel], cfg, seed)
                rows = setup.pool.rows
                write_cell(
                    cell_path(shared, sel, seed),
                    {
                        **shared,
                        "selector": sel,
                        "seed": seed,
                        "machine": machine(),
                        "device": setup.model.device,
                        "wall_s": time.perf_counter() - t,
                        "base": setup.base,
                        "agreement": hungarian_accuracy(setup.pool.domains, setup.pool.truth),
                        "in_source": result["in_source"],
                        "out_of_source": result["out_of_source"],
                        "rows": result["rows"],
                        "by_domain": dict(Counter(rows[i]["source_domain"] for i in picked[sel])),
                        "by_source": dict(Counter(rows[i].get("source", "?") for i in picked[sel])),
                    },
                )
                done += 1
                logger.info(
                    f"grid {name} seed {seed} {sel}: out-of-source {result['out_of_source']['relative_gain']:+.4f}, "
                    f"in-source {result['in_source']['relative_gain']:+.4f} ({time.perf_counter() - t:.0f} s)"
                )
    return done


def load_cells() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(CELLS.glob("*/*.json"))]


def paired(cells: dict[int, dict], ref: dict[int, dict], value) -> dict | None:
    """Paired differences over the seeds both have: mean, sd, standard error, seeds ahead."""
    seeds = sorted(set(cells) & set(ref))
    diffs = [value(cells[s]) - value(ref[s]) for s in seeds]
    if not diffs:
        return None
    sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
    return {"mean": float(np.mean(diffs)), "sd": sd, "se": sd / np.sqrt(len(diffs)), "ahead": sum(d > 0 for d in diffs), "n": len(diffs)}


def domain_gain(cell: dict, proto: str, domain: str) -> float:
    base = cell["base"][proto]["by_domain"][domain]
    return (base - cell[proto]["by_domain"][domain]) / base


def summary(cells: list[dict]) -> dict:
    """Per condition, number format of the proxy (CRN or not) and selector: gains and paired Δ to random."""
    groups: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for c in cells:
        groups[(c["condition"], c["proxy"]["crn"])][c["selector"]][c["seed"]] = c
    table = {}
    for (cond, crn), by_sel in sorted(groups.items()):
        ref = by_sel.get(RANDOM, {})
        rows = {}
        for sel, per_seed in by_sel.items():
            entry = {"n": len(per_seed), "agreement": float(np.mean([c["agreement"] for c in per_seed.values()]))}
            for proto in PROTOCOLS:
                entry[proto] = float(np.mean([c[proto]["relative_gain"] for c in per_seed.values()]))
                entry[f"{proto}_vs_random"] = paired(per_seed, ref, lambda c, p=proto: c[p]["relative_gain"])
            worst = [
                (d, paired(per_seed, ref, lambda c, d=d: domain_gain(c, "out_of_source", d)))
                for d in DOMAINS
                if all(d in c["out_of_source"]["by_domain"] for c in per_seed.values())
            ]
            worst = [(d, p) for d, p in worst if p]
            entry["worst_domain_vs_random"] = min(worst, key=lambda dp: dp[1]["mean"] - 2 * dp[1]["se"]) if worst else None
            mc = [c["out_of_source"].get("mc_accuracy") for c in per_seed.values()]
            entry["mc_accuracy"] = float(np.mean(mc)) if mc and None not in mc else None
            entry["mc_vs_random"] = (
                paired(per_seed, ref, lambda c: c["out_of_source"].get("mc_accuracy") or 0.0) if entry["mc_accuracy"] is not None else None
            )
            rows[sel] = entry
        table[f"{cond}{'' if crn else ' (no CRN)'}"] = rows
    return table


def worst_case(table: dict, selector: str, conditions: tuple[str, ...], seeds: int) -> float | None:
    """The lowest paired out-of-source Δ to random over ``conditions``; None until each has ``seeds``."""
    found = []
    for cond in conditions:
        p = table.get(cond, {}).get(selector, {}).get("out_of_source_vs_random")
        if not p or p["n"] < seeds:
            return None
        found.append(p["mean"])
    return min(found)


def finalists(table: dict) -> list[str]:
    """Round 2's selectors: the baselines and round 1's two candidates with the best worst-case
    out-of-source Δ (item 5 of the plan, benchmarks/README.md section 11)."""
    conditions, seeds = ROUND1
    candidates = [s for s in SETS["round1"] if s not in BASELINES]
    scores = {s: worst_case(table, s, conditions, seeds) for s in candidates}
    missing = [s for s, v in scores.items() if v is None]
    if missing:
        raise ValueError(f"round 1 is not complete ({seeds} seeds on {', '.join(conditions)}): {len(missing)} candidates short")
    return [*BASELINES, *sorted(candidates, key=lambda s: -scores[s])[:2]]


def verdict(table: dict, selector: str) -> tuple[list[str], float | None]:
    """Where ``selector`` breaks the decision rule (below random by more than one standard error in a
    protocol; a worst true domain more than two below), and its worst-case out-of-source Δ."""
    conditions, seeds = ROUND2
    broken = []
    for cond in conditions:
        e = table.get(cond, {}).get(selector)
        if not e:
            continue
        for proto in PROTOCOLS:
            p = e[f"{proto}_vs_random"]
            if p and p["mean"] < -p["se"]:
                broken.append(f"{cond} {proto.replace('_', '-')} {p['mean']:+.4f} (se {p['se']:.4f})")
        worst = e["worst_domain_vs_random"]
        if worst and worst[1]["mean"] < -2 * worst[1]["se"]:
            broken.append(f"{cond} {worst[0]} {worst[1]['mean']:+.4f} (se {worst[1]['se']:.4f})")
    return broken, worst_case(table, selector, conditions, seeds)


def chosen(table: dict) -> str | None:
    """The default round 2 gives: of the finalists that pass, the best worst-case out-of-source Δ;
    kMQ-style when none passes; None while seeds are missing."""
    verdicts = {sel: verdict(table, sel) for sel in finalists(table)[1:]}
    if any(worst is None for _, worst in verdicts.values()):
        return None
    passing = {sel: worst for sel, (broken, worst) in verdicts.items() if not broken}
    return max(passing, key=passing.get) if passing else KMQ


def decision(table: dict) -> list[str]:
    """The decision section: round 2's finalists against the rule, the default it gives, and that
    default's check on the pool whose pseudo-domains are right."""
    lines = ["", "## Decision", ""]
    try:
        names = finalists(table)
    except ValueError as err:
        return [*lines, f"Pending: {err}."]
    conditions, seeds = ROUND2
    lines += [
        f"Finalists (round 1's two best by worst-case out-of-source Δ, and the baselines); the rule needs {seeds} "
        f"paired seeds on each of {', '.join(conditions)}.",
        "",
        "| selector | fewest seeds | breaks the rule at | worst-case out-of-source Δ |",
        "|---|---:|---|---:|",
    ]
    for sel in names[1:]:
        broken, worst = verdict(table, sel)
        n = min((table.get(c, {}).get(sel, {}).get("n", 0) for c in conditions), default=0)
        lines.append(f"| {sel} | {n} | {'; '.join(broken) or 'nowhere'} | {'—' if worst is None else f'{worst:+.4f}'} |")
    rule = chosen(table)
    if rule is None:
        return [*lines, "", "Pending: not every finalist has its seeds yet; the default stays as shipped."]
    why = "no finalist passes" if rule == KMQ else "the best worst-case out-of-source Δ of those that pass"
    lines += ["", f"Default: **{rule}** ({why})."]
    return lines + labelled_check(table, rule)


def labelled_check(table: dict, rule: str) -> list[str]:
    """Does any rule keep a real gain (out-of-source Δ above one standard error) where the pseudo-domains
    are right? If none does, kMQ-style ships and balancing is an opt-in."""
    seeds = ROUND2[1]
    measured = {s: e["out_of_source_vs_random"] for s, e in table.get(LABELLED, {}).items() if s != RANDOM}
    if rule == KMQ:
        return []
    if (measured.get(rule) or {}).get("n", 0) < seeds:
        command = f"grid run --conditions {LABELLED} --selectors check --seeds 0-{seeds - 1}"
        return ["", f"Check pending: {seeds} seeds of it on {LABELLED} (`{command}`)."]
    real = [s for s, p in measured.items() if p and p["n"] >= seeds and p["mean"] > p["se"]]
    head = f"Check on {LABELLED} (pseudo-domains right): its out-of-source Δ {fmt(measured[rule])}"
    if not real:
        return ["", f"{head}; no rule keeps a real gain there, so the default becomes {KMQ}, balancing an opt-in."]
    return ["", f"{head}; a real gain there: {', '.join(real)}."]


def fmt(p: dict | None) -> str:
    return "—" if p is None else f"{p['mean']:+.4f} ± {p['sd']:.4f} (se {p['se']:.4f}, {p['ahead']}/{p['n']})"


def report() -> str:
    cells = load_cells()
    table = summary(cells)
    lines = [
        "# Selection grid",
        "",
        f"{len(cells)} cells. Gain = mean over the true domains of (base − loss) / base on held-out answers; paired Δ = the "
        "selector's gain minus random's of the same seed: mean ± sd (standard error, seeds ahead / seeds both have). Worst "
        "domain = the true domain whose out-of-source paired Δ is lowest (by mean − 2 se). MC = multiple-choice accuracy, "
        "perplexity mode, out-of-source rows with options.",
    ]
    for cond, rows in table.items():
        agreement = next(iter(rows.values()))["agreement"]
        lines += [
            "",
            f"## {cond} (pseudo-domain agreement {agreement:.3f})",
            "",
            "| selector | seeds | out-of-source gain | Δ vs random | in-source gain | Δ vs random | worst domain Δ (out) | MC acc | MC Δ |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for sel, e in sorted(rows.items(), key=lambda kv: -kv[1]["out_of_source"]):
            worst = e["worst_domain_vs_random"]
            worst_text = f"{worst[0]} {worst[1]['mean']:+.4f} (se {worst[1]['se']:.4f})" if worst else "—"
            mc = "—" if e["mc_accuracy"] is None else f"{e['mc_accuracy']:.3f}"
            lines.append(
                f"| {sel} | {e['n']} | {e['out_of_source']:+.4f} | {fmt(e['out_of_source_vs_random'])} | {e['in_source']:+.4f} | "
                f"{fmt(e['in_source_vs_random'])} | {worst_text} | {mc} | {fmt(e['mc_vs_random'])} |"
            )
    lines += decision(table)
    crn = crn_effect(cells)
    if crn:
        lines += [
            "",
            "## Common random numbers",
            "",
            "Paired sd of the Δ to random, over the seeds both runs have.",
            "",
            "| condition | selector | protocol | paired sd with CRN | without | seeds |",
            "|---|---|---|---:|---:|---:|",
        ]
        lines += crn
    text = "\n".join(lines) + "\n"
    (RESULTS / "grid.md").write_text(text)
    (RESULTS / "grid.json").write_text(json.dumps(table, indent=1))
    return text


def crn_effect(cells: list[dict]) -> list[str]:
    """The paired sd to random with and without common random numbers, per protocol, over the seeds
    both runs have (table rows)."""
    by: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for c in cells:
        by[(c["condition"], c["proxy"]["crn"], c["selector"])][c["seed"]] = c
    out = []
    for (cond, crn, sel), shared in sorted(by.items()):
        alone, ref, ref_alone = by.get((cond, False, sel)), by.get((cond, True, RANDOM)), by.get((cond, False, RANDOM))
        if not crn or sel == RANDOM or not (alone and ref and ref_alone):
            continue
        seeds = set(shared) & set(alone) & set(ref) & set(ref_alone)
        for proto in PROTOCOLS:
            gain = lambda c, p=proto: c[p]["relative_gain"]  # noqa: E731
            a = paired({s: shared[s] for s in seeds}, ref, gain)
            b = paired({s: alone[s] for s in seeds}, ref_alone, gain)
            if a and b and len(seeds) > 1:
                out.append(f"| {cond} | {sel} | {proto.replace('_', '-')} | {a['sd']:.4f} | {b['sd']:.4f} | {len(seeds)} |")
    return out


def screen(conditions: list[str], names: list[str], seeds: list[int], cfg: ProxyConfig) -> str:
    """Rows per true domain and per source of every rule, against random's expectation (the pool's
    own mix): no fine-tune. ``max source ×``: the largest ratio of a source's rows to its expected rows."""
    lines = [
        "# Composition screen",
        "",
        f"Ratio {cfg.ratio}; mean over seeds {seeds[0]}-{seeds[-1]}; expected = k × the source's share of the selectable rows.",
    ]
    for name in conditions:
        cond = CONDITIONS[name]
        pool = load_pool(cond.pool, cond.train_args)
        every = np.arange(len(pool.rows))  # the fine-tunes hold rows out; the screen reads the whole pool
        k = int(cfg.ratio * len(every))
        sources = Counter(r.get("source", "?") for r in pool.rows)
        truth = Counter(pool.truth)
        lines += [
            "",
            f"## {name} (agreement {hungarian_accuracy(pool.domains, pool.truth):.3f}; {len(pool.rows)} rows, k = {k})",
            "",
            "| rule | " + " | ".join(DOMAINS) + " | max source × | over-sampled source |",
            "|---|" + "---:|" * (len(DOMAINS) + 2),
            "| *random's expectation* | " + " | ".join(f"{k * truth[d] / len(pool.rows):.0f}" for d in DOMAINS) + " | 1.00 | |",
        ]
        for sel in names:
            per_domain, per_source = Counter(), Counter()
            for seed in seeds:
                picked = selections(pool, cfg.ratio, every, [sel], seed, crn=cfg.crn)[sel]
                per_domain.update(pool.truth[i] for i in picked)
                per_source.update(pool.rows[i].get("source", "?") for i in picked)
            over = {s: per_source[s] / len(seeds) / (k * n / len(pool.rows)) for s, n in sources.items()}
            top = max(over, key=over.get)
            lines.append(
                f"| {sel} | "
                + " | ".join(f"{per_domain[d] / len(seeds):.0f}" for d in DOMAINS)
                + f" | {over[top]:.2f} | {top.split('/')[-1]} |"
            )
    text = "\n".join(lines) + "\n"
    (RESULTS / "grid_screen.md").write_text(text)
    return text


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "report", "screen"))
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma-separated, of {', '.join(CONDITIONS)}")
    parser.add_argument("--selectors", default="first", help=f"names of benchmarks/selectors.py or sets ({', '.join(SETS)})")
    parser.add_argument("--seeds", default="0-5", type=parse_seeds, help="e.g. 0-5 or 0,2,7")
    parser.add_argument("--minutes", type=float, default=None, help="start no cell after this many minutes")
    parser.add_argument("--crn", type=yes_no, default=True, help="common random numbers (default true)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    conditions = [c.strip() for c in args.conditions.split(",")]
    sets = dict(SETS)
    wanted = args.selectors.split(",")
    if "round2" in wanted or "check" in wanted:
        try:
            table = summary(load_cells())
            sets["round2"] = finalists(table)
            rule = chosen(table)
        except ValueError as err:
            parser.error(str(err))
        if rule is None and "check" in wanted:
            parser.error("the check follows the decision: round 2 is not complete")
        sets["check"] = list(dict.fromkeys([RANDOM, SHIPPED, rule]))
    names = list(dict.fromkeys(n for part in args.selectors.split(",") for n in sets.get(part.strip(), [part.strip()])))
    bad = [c for c in conditions if c not in CONDITIONS] + [n for n in names if n not in SELECTORS]
    if bad:
        parser.error(f"unknown condition(s) or selector(s): {bad}")
    cfg = dataclasses.replace(QUICK, crn=args.crn, seeds=tuple(args.seeds))
    if args.command == "run":
        print(f"grid: {run(conditions, names, args.seeds, cfg, args.minutes, args.device)} cells run")
        print(report())
    elif args.command == "report":
        print(report())
    else:
        print(screen(conditions, names, args.seeds, cfg))


if __name__ == "__main__":
    main()
