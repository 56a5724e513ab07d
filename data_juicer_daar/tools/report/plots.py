"""``daar report``, step 2: the PNG plots of a ``Selection``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .load import Selection, score_edges


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _domains(sel: Selection, names: list[str], path: Path) -> None:
    import matplotlib.pyplot as plt

    pool_dom, sel_dom = sel.domain_counts()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [pool_dom[n] / len(sel.scores) for n in names], 0.4, label="pool")
    ax.bar(x + 0.2, [sel_dom[n] / max(sel.picked.sum(), 1) for n in names], 0.4, label="selected")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel("share")
    ax.set_title("Predicted domain: pool vs selection")
    ax.legend()
    _save(fig, path)


def axis_label(sel: Selection) -> str:
    return f"{sel.score.stats_key} (nats{f', × {sel.scale:g}' if sel.scale != 1 else ''})"


def _scores(sel: Selection, path: Path) -> None:
    import matplotlib.pyplot as plt

    edges, scores = score_edges(sel) / sel.scale, sel.scores / sel.scale
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(scores, bins=edges, alpha=0.6, label="pool")
    ax.hist(scores[sel.picked], bins=edges, alpha=0.8, label="selected")
    ax.set_xlabel(axis_label(sel))
    ax.set_ylabel("samples")
    ax.set_title("Score distribution")
    ax.legend()
    _save(fig, path)


def _scores_by_domain(sel: Selection, names: list[str], path: Path) -> None:
    import matplotlib.pyplot as plt

    edges, scores = score_edges(sel) / sel.scale, sel.scores / sel.scale
    cols = min(len(names), 2)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7, 2.6 * rows), squeeze=False, sharex=True)
    cutoffs = sel.cutoffs()
    labels = np.asarray(sel.domains, dtype=object)
    for ax, name in zip(axes.flat, names):
        mine = labels == name
        ax.hist(scores[mine], bins=edges, alpha=0.6, label="pool")
        ax.hist(scores[mine & sel.picked], bins=edges, alpha=0.8, label="selected")
        if name in cutoffs:
            cut = cutoffs[name] / sel.scale
            ax.axvline(cut, color="black", linestyle="--", linewidth=1, label=f"cut-off {cutoffs[name]:.4g}")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.supxlabel(axis_label(sel), fontsize=9)
    _save(fig, path)


def plots(sel: Selection, out: Path) -> dict[str, Path]:
    """``domains.png`` (pool vs selection per domain), ``<score>.png`` (histogram of the score that
    ranked) and ``<score>_by_domain.png`` (per domain, its cut-off marked), keyed by what they show:
    "domains", "score", "score_by_domain"."""
    import matplotlib

    matplotlib.use("Agg")
    pool_dom, _ = sel.domain_counts()
    names = sorted(pool_dom, key=lambda d: -pool_dom[d])
    paths = {
        "domains": out / "domains.png",
        "score": out / f"{sel.score.name}.png",
        "score_by_domain": out / f"{sel.score.name}_by_domain.png",
    }
    _domains(sel, names, paths["domains"])
    _scores(sel, paths["score"])
    _scores_by_domain(sel, names, paths["score_by_domain"])
    return paths
