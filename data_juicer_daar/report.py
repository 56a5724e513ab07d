"""``daar report``: what was selected, as text and PNG plots.

Inputs: the scored pool (the filter's ``stats_export_path`` output: every row with its DaaR meta and
stats) and the selection written by ``dj-process``. Output: ``report.txt``, ``domains.png`` and
``rewards.png`` in a directory.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from . import keys
from .corpus import CorpusError, read_jsonl

DJ_PREFIX = "__dj__"


def _row_key(row: dict, id_key: str | None) -> str:
    if id_key:
        return json.dumps(row.get(id_key), sort_keys=True, default=str)
    return json.dumps({k: v for k, v in row.items() if not k.startswith(DJ_PREFIX)}, sort_keys=True, default=str)


def _table(title: str, pool: Counter, sel: Counter, n_pool: int, n_sel: int) -> list[str]:
    lines = [title, f"  {'':<16}{'pool':>8}{'%':>7}{'selected':>10}{'%':>7}"]
    for name in sorted(pool, key=lambda d: -pool[d]):
        lines.append(f"  {name:<16}{pool[name]:>8}{100 * pool[name] / n_pool:>6.1f}%{sel[name]:>10}{100 * sel[name] / max(n_sel, 1):>6.1f}%")
    return lines


def write_report(pool_path: str | Path, selection_path: str | Path, out: str | Path, id_key: str | None = None, score: str = "probe_entropy") -> Path:
    """Write report.txt and the plots into ``out``; returns the report path. ``score`` names the
    score the selector ranked by ("probe_entropy", its default, or "predictor")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pool, selection = read_jsonl(pool_path), read_jsonl(selection_path, allow_empty=True)
    if id_key is not None:
        for name, rows in (("pool", pool), ("selection", selection)):
            lacking = sum(id_key not in r for r in rows)
            if lacking:
                raise CorpusError(f"--id-key {id_key!r}: {lacking} of {len(rows)} {name} rows have no such field; pass a field every row has, or omit --id-key to match whole rows")
    if score not in keys.SCORE_KEYS:
        raise CorpusError(f"--score must be one of {', '.join(keys.SCORE_KEYS)}, got {score!r}")
    score_key = keys.SCORE_KEYS[score]
    missing = [i for i, r in enumerate(pool, 1) if (r.get(f"{DJ_PREFIX}stats__") or {}).get(score_key) is None]
    if missing:
        raise CorpusError(f"{pool_path}: row {missing[0]} has no {score_key} stats; pass the scored pool written by the filter's stats_export_path")
    chosen = Counter(_row_key(r, id_key) for r in selection)
    picked = []
    for row in pool:
        key = _row_key(row, id_key)
        picked.append(chosen[key] > 0)
        if chosen[key]:
            chosen[key] -= 1
    unmatched = sum(chosen.values())
    meta = [r.get(f"{DJ_PREFIX}meta__") or {} for r in pool]
    rewards = np.array([r[f"{DJ_PREFIX}stats__"][score_key] for r in pool], dtype=float)
    picked = np.array(picked)
    domains = [m.get(keys.DOMAIN, "<not tagged>") for m in meta]
    pool_dom = Counter(domains)
    sel_dom = Counter(d for d, p in zip(domains, picked) if p)
    issues = Counter(m.get(keys.ISSUE) for m in meta if m.get(keys.ISSUE))

    edges = np.linspace(0, max(float(rewards.max()), 1e-6), 11)
    pool_hist, _ = np.histogram(rewards, edges)
    sel_hist, _ = np.histogram(rewards[picked], edges)
    lines = [
        "DaaR selection report",
        f"  pool: {len(pool)} rows ({pool_path})",
        f"  selected: {len(selection)} rows ({selection_path}), {100 * len(selection) / len(pool):.1f} % of the pool",
        f"  unusual text in the pool: {dict(issues) or 'none'}",
    ]
    if unmatched:
        lines.append(f"  note: {unmatched} selected rows were not found in the pool (different files?)")
    lines += [""] + _table("Predicted domain", pool_dom, sel_dom, len(pool), int(picked.sum()))
    lines += ["", f"Score ({score_key}) histogram", f"  {'bin':<16}{'pool':>8}{'selected':>10}"]
    for lo, hi, a, b in zip(edges[:-1], edges[1:], pool_hist, sel_hist):
        lines.append(f"  {lo:5.3f}-{hi:5.3f}     {a:>8}{b:>10}")
    if not selection:
        lines.append("  the selection is empty: no row was kept")
    if picked.any():
        lines.append(f"  mean score: pool {rewards.mean():.4f}, selected {rewards[picked].mean():.4f}")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(pool_dom, key=lambda d: -pool_dom[d])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(x - 0.2, [pool_dom[n] / len(pool) for n in names], 0.4, label="pool")
    ax.bar(x + 0.2, [sel_dom[n] / max(picked.sum(), 1) for n in names], 0.4, label="selected")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel("share")
    ax.set_title("Predicted domain: pool vs selection")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "domains.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(rewards, bins=edges, alpha=0.6, label="pool")
    ax.hist(rewards[picked], bins=edges, alpha=0.8, label="selected")
    ax.set_xlabel(f"{score_key} (nats)")
    ax.set_ylabel("samples")
    ax.set_title("Score distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rewards.png", dpi=110)
    plt.close(fig)
    report = out / "report.txt"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return report
