"""``daar report``, step 3: the text report and one self-contained HTML page.

Output, in a directory: ``report.txt``, ``report.html`` (plots embedded; per domain the highest-
and lowest-scoring rows; the bundle's training facts) and the plots of ``plots.py``.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from ... import keys
from ...errors import ConfigError
from ...method.bundle import current_umask, read_manifest
from ...method.manifest import Manifest
from .config import ReportConfig
from .load import Selection, load_selection, outside_range, score_edges
from .plots import plots
from .recipe import read_recipe


def _table(title: str, pool: Counter, sel: Counter, n_pool: int, n_sel: int) -> list[str]:
    lines = [title, f"  {'':<16}{'pool':>8}{'%':>7}{'selected':>10}{'%':>7}"]
    for name in sorted(pool, key=lambda d: -pool[d]):
        lines.append(
            f"  {name:<16}{pool[name]:>8}{100 * pool[name] / n_pool:>6.1f}%{sel[name]:>10}{100 * sel[name] / max(n_sel, 1):>6.1f}%"
        )
    return lines


def text_report(sel: Selection, rule: str | None = None) -> list[str]:
    """The report as text lines; ``rule``: the selector's rule in words (``--recipe``)."""
    n_pool, n_picked = len(sel.scores), int(sel.picked.sum())
    pool_dom, sel_dom = sel.domain_counts()
    edges = score_edges(sel)
    pool_hist, _ = np.histogram(sel.scores, edges)
    sel_hist, _ = np.histogram(sel.scores[sel.picked], edges)
    lines = [
        "DaaR selection report",
        f"  pool: {n_pool} rows ({sel.pool_path})",
        f"  selected: {sel.n_selected} rows ({sel.selection_path}), {100 * sel.n_selected / n_pool:.1f} % of the pool",
        f"  selection rule: {rule or 'not known here (pass --recipe, the recipe that made the selection, to state it)'}",
        f"  unusual text in the pool: {dict(sel.issues) or 'none'}",
    ]
    coverage = sel.subdomain_coverage()
    if coverage:
        lines.append(f"  sub-domains covered by the selection: {coverage[0]} of the pool's {coverage[1]}")
    over = sel.passed_over()
    if over:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(over.items()))
        lines.append(
            f"  rows above their domain's cut-off, not selected: {sum(over.values())} ({why}): "
            "with coverage each sub-domain gets a part in proportion to its rows; one too small for a whole row gets none, "
            "and a full part leaves its other rows out however high they score"
        )
    lines += [""] + _table("Predicted domain", pool_dom, sel_dom, n_pool, n_picked)
    lines += ["", f"Score ({sel.score.stats_key}) histogram", f"  {'bin':<16}{'pool':>8}{'selected':>10}"]
    for lo, hi, a, b in zip(edges[:-1], edges[1:], pool_hist, sel_hist):
        lines.append(f"  {f'{lo:.4g}-{hi:.4g}':<16}{a:>8}{b:>10}")
    beyond = outside_range(sel, sel.classes)
    if beyond:
        lines.append(f"  {beyond}")
    if not sel.n_selected:
        lines.append("  the selection is empty: no row was kept")
    if sel.picked.any():
        lines.append(f"  mean score: pool {sel.mean():.4g}, selected {sel.mean(sel.picked):.4g}")
    return lines


def examples(sel: Selection, per_side: int = 3) -> dict[str, dict[str, list[int]]]:
    """Per domain, the row indices of its ``per_side`` highest- and lowest-scoring rows, each list
    best first (ties broken by input position)."""
    out = {}
    labels = np.asarray(sel.domains, dtype=object)
    for name in sorted(set(sel.domains)):
        rows = np.flatnonzero(labels == name)
        ranked = rows[np.lexsort((rows, -sel.scores[rows]))]
        # both lists best first; a small domain's rows are shown once
        out[name] = {"highest": ranked[:per_side].tolist(), "lowest": ranked[max(per_side, len(ranked) - per_side) :].tolist()}
    return out


def bundle_facts(manifest: Manifest) -> dict[str, object]:
    """What a reader needs to know about the bundle that scored the pool."""
    metrics, synthesis = manifest.metrics, manifest.synthesis
    per_domain = synthesis.get("per_domain", {})
    accepted = sum(d.get("accepted", 0) for d in per_domain.values())
    generated = sum(d.get("generated", 0) for d in per_domain.values())
    return {
        "model": manifest.backbone.model,
        "blocks kept (L)": manifest.backbone.num_layers,
        "training number format": manifest.backbone.dtype or "float32",
        "domains": ", ".join(manifest.domain_names),
        "pseudo-labels": manifest.training.get("pseudo_labels"),
        "probe validation accuracy": metrics.get("probe_val_accuracy"),
        "probe temperature": metrics.get("probe_temperature"),
        "predictor validation Spearman": metrics.get("predictor_val_spearman"),
        "cluster sizes": ", ".join(f"{k} {v}" for k, v in (metrics.get("cluster_sizes") or {}).items()),
        "probe set": f"{metrics.get('n_probe')} rows of a {metrics.get('n_pool')}-row pool",
        "synthesis": f"{accepted} of {generated} generated examples accepted"
        if synthesis.get("enabled")
        else "off (the domain file's examples only)",
    }


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_report(sel: Selection, lines: list[str], pngs: dict[str, Path], facts: dict[str, object] | None, max_chars: int = 600) -> str:
    """One self-contained page: the text report's ``lines``, plots (embedded), examples per domain, bundle facts."""
    esc = html.escape
    cutoffs = sel.cutoffs()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>DaaR selection report</title><style>",
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
        "pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font-size:12px}"
        "table.examples{width:100%;table-layout:fixed}table.examples col.n{width:5.5em}"
        ".kept{background:#e8f5e9}img{max-width:100%}h2{border-bottom:1px solid #ddd}",
        "</style></head><body><h1>DaaR selection report</h1>",
        "<pre>" + esc("\n".join(lines)) + "</pre>",
        "<h2>Pool vs selection per predicted domain</h2>",
        _img(pngs["domains"], "pool vs selection per domain"),
        "<h2>Scores per domain, cut-off marked</h2>",
        _img(pngs["score_by_domain"], "score histogram per domain"),
        "<h2>Scores, whole pool</h2>",
        _img(pngs["score"], "score histogram"),
        f"<h2>Examples: highest and lowest {esc(sel.score.stats_key)} per domain</h2>",
        "<p>Rows kept by the selection are shaded green.</p>",
    ]
    for name, sides in examples(sel).items():
        cut = f" (cut-off {cutoffs[name]:.4f})" if name in cutoffs else " (no row selected)"
        parts.append(
            f"<h3>{esc(name)}{esc(cut)}</h3><table class='examples'><col class='n'><col class='n'><col class='n'><col>"
            "<tr><th></th><th>score</th><th>selected</th><th>text</th></tr>"
        )
        for side, rows in sides.items():
            for i in rows:
                text = sel.texts[i] if len(sel.texts[i]) <= max_chars else sel.texts[i][:max_chars] + " [...]"
                kept = "kept" if sel.picked[i] else ""
                parts.append(
                    f"<tr class='{kept}'><td>{side}</td><td>{sel.scores[i]:.4f}</td>"
                    f"<td>{'yes' if kept else 'no'}</td><td><pre>{esc(text)}</pre></td></tr>"
                )
        parts.append("</table>")
    parts.append("<h2>Bundle</h2>")
    if facts:
        parts.append("<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in facts.items()) + "</table>")
    else:
        parts.append("<p>Pass <code>--bundle</code> to show the bundle's training facts.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(config: ReportConfig) -> list[str]:
    """Write report.txt, report.html (self-contained) and the PNG plots into ``config.out``; returns
    the text report's lines."""
    if Path(config.out).exists() and not Path(config.out).is_dir():
        raise ConfigError(f"{config.out} is an existing file: give the report a directory of its own", option="out")
    rule = None
    if config.recipe is not None:
        found = read_recipe(config.recipe)
        if config.pool is None and found.pool is None:
            raise ConfigError(
                f"the recipe {config.recipe} keeps no scored pool: add stats_export_path to daar_diversity_score_filter "
                "(as recipes/daar_select.yaml does) and run it again, or give --pool",
                option="pool",
            )
        if config.selection is None and found.selection is None:
            raise ConfigError(f"the recipe {config.recipe} has no local export_path: give --selection", option="selection")
        given = {k: getattr(config, k) for k in ("pool", "selection", "bundle", "score")}
        config = replace(config, **{k: v if v is not None else getattr(found, k) for k, v in given.items()})
        rule = found.rule
    facts = bundle_facts(read_manifest(config.bundle)) if config.bundle is not None else None
    sel = load_selection(config.pool, config.selection, config.id_key, config.score or keys.DEFAULT_SCORE)
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # the report appears whole or not at all
    try:
        lines = text_report(sel, rule)
        pngs = plots(sel, staging)
        (staging / "report.html").write_text(html_report(sel, lines, pngs, facts), encoding="utf-8")
        (staging / "report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.chmod(staging, 0o777 & ~current_umask())
        if not out.exists():
            os.replace(staging, out)
        else:  # a folder the user named: only the report's own files are replaced
            for made in staging.iterdir():
                os.replace(made, out / made.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lines
