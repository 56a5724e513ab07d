"""``daar report``: what was selected, as text, PNG plots and one self-contained HTML page.

Inputs: the scored pool (the filter's ``stats_export_path`` output: every row with its DaaR meta and
stats), the selection written by ``dj-process`` and, optionally, the bundle. Output, in a
directory: ``report.txt``, ``report.html`` (plots embedded; per domain the highest- and
lowest-scoring rows; the bundle's training facts), ``domains.png``, ``rewards.png`` and
``rewards_by_domain.png``.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import keys
from ...method.bundle import read_manifest
from ...method.corpus import CorpusError, read_jsonl
from ...method.text import render

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


@dataclass
class Selection:
    """A scored pool with, per row, its score, predicted domain, text and whether it was selected."""

    pool_path: str
    selection_path: str
    score_key: str
    n_selected: int
    scores: np.ndarray
    domains: list[str]
    picked: np.ndarray
    texts: list[str]
    issues: Counter
    subdomains: list[int | None]  # meta daar_subdomain per row (None: not tagged by the mapper)

    def subdomain_coverage(self) -> tuple[int, int] | None:
        """(sub-domains with a selected row, sub-domains in the pool), or None when rows carry none."""
        pool = {g for g in self.subdomains if g is not None and g >= 0}
        if not pool:
            return None
        return len({g for g, p in zip(self.subdomains, self.picked) if p and g in pool}), len(pool)

    def domain_counts(self) -> tuple[Counter, Counter]:
        """Rows per predicted domain in the pool and in the selection."""
        return Counter(self.domains), Counter(d for d, p in zip(self.domains, self.picked) if p)

    def cutoffs(self) -> dict[str, float]:
        """Lowest selected score per domain: the cut-off each domain's rows had to reach."""
        out: dict[str, float] = {}
        for d, score, kept in zip(self.domains, self.scores, self.picked):
            if kept:
                out[d] = min(out.get(d, float(score)), float(score))
        return out


def load_selection(pool_path: str | Path, selection_path: str | Path, id_key: str | None = None, score: str = "probe_entropy") -> Selection:
    """Read the scored pool and the selection; mark each pool row that was selected."""
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
    if unmatched:
        by = f"by {id_key!r}" if id_key else "as whole rows"
        raise CorpusError(f"{selection_path}: {unmatched} of {len(selection)} selected rows are not in the pool {pool_path} (matched {by}): is the selection from another pool?")
    meta = [r.get(f"{DJ_PREFIX}meta__") or {} for r in pool]
    return Selection(
        pool_path=str(pool_path),
        selection_path=str(selection_path),
        score_key=score_key,
        n_selected=len(selection),
        scores=np.array([r[f"{DJ_PREFIX}stats__"][score_key] for r in pool], dtype=float),
        domains=[m.get(keys.DOMAIN, "<not tagged>") for m in meta],
        picked=np.array(picked, dtype=bool),
        texts=[render(r).text for r in pool],
        issues=Counter(m.get(keys.ISSUE) for m in meta if m.get(keys.ISSUE)),
        subdomains=[m.get(keys.SUBDOMAIN) for m in meta],
    )


def _edges(sel: Selection) -> np.ndarray:
    return np.linspace(0, max(float(sel.scores.max()), 1e-6), 11)


def text_report(sel: Selection) -> list[str]:
    n_pool, n_picked = len(sel.scores), int(sel.picked.sum())
    pool_dom, sel_dom = sel.domain_counts()
    edges = _edges(sel)
    pool_hist, _ = np.histogram(sel.scores, edges)
    sel_hist, _ = np.histogram(sel.scores[sel.picked], edges)
    lines = [
        "DaaR selection report",
        f"  pool: {n_pool} rows ({sel.pool_path})",
        f"  selected: {sel.n_selected} rows ({sel.selection_path}), {100 * sel.n_selected / n_pool:.1f} % of the pool",
        f"  unusual text in the pool: {dict(sel.issues) or 'none'}",
    ]
    coverage = sel.subdomain_coverage()
    if coverage:
        lines.append(f"  sub-domains covered by the selection: {coverage[0]} of the pool's {coverage[1]}")
    lines += [""] + _table("Predicted domain", pool_dom, sel_dom, n_pool, n_picked)
    lines += ["", f"Score ({sel.score_key}) histogram", f"  {'bin':<16}{'pool':>8}{'selected':>10}"]
    for lo, hi, a, b in zip(edges[:-1], edges[1:], pool_hist, sel_hist):
        lines.append(f"  {lo:5.3f}-{hi:5.3f}     {a:>8}{b:>10}")
    if not sel.n_selected:
        lines.append("  the selection is empty: no row was kept")
    if sel.picked.any():
        lines.append(f"  mean score: pool {sel.scores.mean():.4f}, selected {sel.scores[sel.picked].mean():.4f}")
    return lines


def plots(sel: Selection, out: Path) -> dict[str, Path]:
    """domains.png (pool vs selection per domain), rewards.png (score histogram) and
    rewards_by_domain.png (score histogram per domain, the domain's cut-off marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pool_dom, sel_dom = sel.domain_counts()
    names = sorted(pool_dom, key=lambda d: -pool_dom[d])
    edges = _edges(sel)
    paths = {name: out / f"{name}.png" for name in ("domains", "rewards", "rewards_by_domain")}

    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [pool_dom[n] / len(sel.scores) for n in names], 0.4, label="pool")
    ax.bar(x + 0.2, [sel_dom[n] / max(sel.picked.sum(), 1) for n in names], 0.4, label="selected")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel("share")
    ax.set_title("Predicted domain: pool vs selection")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths["domains"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(sel.scores, bins=edges, alpha=0.6, label="pool")
    ax.hist(sel.scores[sel.picked], bins=edges, alpha=0.8, label="selected")
    ax.set_xlabel(f"{sel.score_key} (nats)")
    ax.set_ylabel("samples")
    ax.set_title("Score distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths["rewards"], dpi=110)
    plt.close(fig)

    cols = min(len(names), 2)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7, 2.6 * rows), squeeze=False, sharex=True)
    cutoffs = sel.cutoffs()
    labels = np.asarray(sel.domains, dtype=object)
    for ax, name in zip(axes.flat, names):
        mine = labels == name
        ax.hist(sel.scores[mine], bins=edges, alpha=0.6, label="pool")
        ax.hist(sel.scores[mine & sel.picked], bins=edges, alpha=0.8, label="selected")
        if name in cutoffs:
            ax.axvline(cutoffs[name], color="black", linestyle="--", linewidth=1, label=f"cut-off {cutoffs[name]:.3f}")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.supxlabel(f"{sel.score_key} (nats)", fontsize=9)
    fig.tight_layout()
    fig.savefig(paths["rewards_by_domain"], dpi=110)
    plt.close(fig)
    return paths


def examples(sel: Selection, per_side: int = 3) -> dict[str, dict[str, list[int]]]:
    """Per domain, the row indices of its ``per_side`` highest- and lowest-scoring rows, each list
    best first (ties broken by input position)."""
    out = {}
    labels = np.asarray(sel.domains, dtype=object)
    for name in sorted(set(sel.domains)):
        rows = np.flatnonzero(labels == name)
        ranked = rows[np.lexsort((rows, -sel.scores[rows]))]
        # both lists best first; a small domain's rows are shown once
        out[name] = {"highest": ranked[:per_side].tolist(), "lowest": ranked[max(per_side, len(ranked) - per_side):].tolist()}
    return out


def bundle_facts(manifest: dict) -> dict[str, object]:
    """What a reader needs to know about the bundle that scored the pool."""
    metrics, synthesis = manifest.get("metrics", {}), manifest.get("synthesis", {})
    per_domain = synthesis.get("per_domain", {})
    accepted = sum(d.get("accepted", 0) for d in per_domain.values())
    generated = sum(d.get("generated", 0) for d in per_domain.values())
    return {
        "model": manifest["backbone"]["model"],
        "blocks kept (L)": manifest["backbone"]["num_layers"],
        "training number format": manifest["backbone"].get("dtype", "float32"),
        "domains": ", ".join(d["name"] for d in manifest["domains"]),
        "pseudo-labels": manifest.get("training", {}).get("pseudo_labels"),
        "probe validation accuracy": metrics.get("probe_val_accuracy"),
        "probe temperature": metrics.get("probe_temperature"),
        "predictor validation Spearman": metrics.get("predictor_val_spearman"),
        "cluster sizes": ", ".join(f"{k} {v}" for k, v in (metrics.get("cluster_sizes") or {}).items()),
        "probe set": f"{metrics.get('n_probe')} rows of a {metrics.get('n_pool')}-row pool",
        "synthesis": f"{accepted} of {generated} generated examples accepted" if synthesis.get("enabled") else "off (the domain file's examples only)",
    }


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_report(sel: Selection, pngs: dict[str, Path], facts: dict[str, object] | None, max_chars: int = 600) -> str:
    """One self-contained page: summary, plots (embedded), examples per domain, bundle facts."""
    esc = html.escape
    cutoffs = sel.cutoffs()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>DaaR selection report</title><style>",
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font-size:12px}"
        "table.examples{width:100%;table-layout:fixed}table.examples col.n{width:5.5em}"
        ".kept{background:#e8f5e9}img{max-width:100%}h2{border-bottom:1px solid #ddd}",
        "</style></head><body><h1>DaaR selection report</h1>",
        "<pre>" + esc("\n".join(text_report(sel))) + "</pre>",
        "<h2>Pool vs selection per predicted domain</h2>", _img(pngs["domains"], "pool vs selection per domain"),
        "<h2>Scores per domain, cut-off marked</h2>", _img(pngs["rewards_by_domain"], "score histogram per domain"),
        "<h2>Scores, whole pool</h2>", _img(pngs["rewards"], "score histogram"),
        f"<h2>Examples: highest and lowest {esc(sel.score_key)} per domain</h2>",
        "<p>Rows kept by the selection are shaded green.</p>",
    ]
    for name, sides in examples(sel).items():
        cut = f" (cut-off {cutoffs[name]:.4f})" if name in cutoffs else " (no row selected)"
        parts.append(f"<h3>{esc(name)}{esc(cut)}</h3><table class='examples'><col class='n'><col class='n'><col class='n'><col>"
                     "<tr><th></th><th>score</th><th>selected</th><th>text</th></tr>")
        for side, rows in sides.items():
            for i in rows:
                text = sel.texts[i] if len(sel.texts[i]) <= max_chars else sel.texts[i][:max_chars] + " [...]"
                kept = "kept" if sel.picked[i] else ""
                parts.append(f"<tr class='{kept}'><td>{side}</td><td>{sel.scores[i]:.4f}</td><td>{'yes' if kept else 'no'}</td><td><pre>{esc(text)}</pre></td></tr>")
        parts.append("</table>")
    parts.append("<h2>Bundle</h2>")
    if facts:
        parts.append("<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in facts.items()) + "</table>")
    else:
        parts.append("<p>Pass <code>--bundle</code> to show the bundle's training facts.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(pool_path: str | Path, selection_path: str | Path, out: str | Path, id_key: str | None = None,
                 score: str = "probe_entropy", bundle: str | Path | None = None) -> Path:
    """Write report.txt, report.html (self-contained) and the PNG plots into ``out``; returns the
    text report's path. ``score`` names the score the selector ranked by ("probe_entropy", its
    default, or "predictor"); ``bundle`` adds the bundle's training facts to the page."""
    facts = bundle_facts(read_manifest(bundle)) if bundle is not None else None
    sel = load_selection(pool_path, selection_path, id_key, score)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = text_report(sel)
    pngs = plots(sel, out)
    (out / "report.html").write_text(html_report(sel, pngs, facts), encoding="utf-8")
    report = out / "report.txt"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return report
