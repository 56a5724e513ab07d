"""A labelled pool as both quality benchmarks use it: one of ``eval_pools.py``'s pools with its true
source domains hidden from every selector, its features, the scores of a bundle trained on it with
all defaults (the demo bundle for the demo corpus), and each selector's choice at a ratio.

Features, embeddings and the upstream selector's embeddings are cached under ``outputs/bench/``
(keyed by the rendered texts, and the features also by the bundle's backbone settings), so a second
benchmark reuses the first one's passes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.common import OUT, demo_bundle, run_checked
from benchmarks.eval_pools import pool_path
from benchmarks.peers import upstream_embed
from benchmarks.selectors import SELECTORS, View
from data_juicer_daar.method.bundle import FORMAT_VERSION

if TYPE_CHECKING:
    from data_juicer_daar.method.scoring import Scorer

DOMAINS = ["common_sense", "reasoning", "mathematics", "coding"]


def cached(name: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    path = OUT / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npy"
    if path.is_file():
        return np.load(path)
    value = compute()
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(path, value)
    return value


@dataclass
class Pool:
    name: str
    rows: list[dict]
    truth: list[str]  # true source domain per row (never shown to a selector)
    texts: list[str]
    features: np.ndarray  # (n, d) block-L features (DaaR's probe input)
    embeddings: np.ndarray  # (n, d) token-embedding means (DaaR's stage 1)
    reward: np.ndarray  # (n,) DaaR predicted diversity reward
    entropy: np.ndarray  # (n,) the probe's own (calibrated) entropy
    domains: list[str]  # DaaR probe's domain per row
    probs: np.ndarray  # (n, K) the probe's softmax
    subdomains: np.ndarray  # (n,) the bundle's sub-domain per row
    scorer: Scorer  # the demo bundle's scorer (its backbone is loaded)

    @cached_property
    def upstream(self) -> np.ndarray:
        """(n, d) the upstream k-means selector's embeddings (computed on first use: a long pass)."""
        return upstream_vectors(self.texts)


def hungarian_accuracy(pred: list, truth: list) -> float:
    """Share of rows on the diagonal after the best one-to-one matching of labels to true domains."""
    from scipy.optimize import linear_sum_assignment

    p_names, t_names = sorted(set(pred)), sorted(set(truth))
    table = np.zeros((len(p_names), len(t_names)))
    for p, t in zip(pred, truth):
        table[p_names.index(p), t_names.index(t)] += 1
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(pred))


def pool_file(name: str | Path) -> Path:
    """A pool of ``eval_pools.py`` by name, or any JSONL file whose rows carry ``source_domain``."""
    return pool_path(name) if isinstance(name, str) else Path(name)


def pool_bundle(name: str | Path, train_args: tuple[str, ...] = ()) -> Path:
    """The bundle a user would score ``name`` with: trained on that pool with all defaults, or with
    ``train_args`` changed (a bundle of an older format is trained again)."""
    if name == "demo" and not train_args:
        bundle = demo_bundle()
    else:
        path = pool_file(name)
        tag = name if isinstance(name, str) else f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
        if train_args:
            tag += "-" + hashlib.sha256(" ".join(train_args).encode()).hexdigest()[:8]
        bundle = OUT / "bundles" / tag
    manifest = bundle / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text()).get("format_version") != FORMAT_VERSION:
        cmd = [sys.executable, "-m", "data_juicer_daar.tools.cli", "train", "--corpus", str(pool_file(name)), "--out", str(bundle)]
        run_checked([*cmd, *train_args])
    return bundle


def upstream_vectors(texts: list[str]) -> np.ndarray:
    """The upstream k-means selector's embeddings of ``texts`` (cached by the texts)."""

    def compute() -> np.ndarray:
        from transformers import AutoModel, AutoTokenizer

        from data_juicer_daar.method.models import prepare_default_model, quiet_loading

        with quiet_loading():
            model = AutoModel.from_pretrained(prepare_default_model()).eval()
        # batched here to bound the benchmark's time; per-sample (the upstream way) is what
        # scoring_speed.py times; left padding makes the last position each text's last token
        return upstream_embed(model, AutoTokenizer.from_pretrained(prepare_default_model()), texts, max_length=1024, batch_size=8)

    return cached("upstream_embeddings", hashlib.sha256("\n".join(texts).encode()).hexdigest(), compute)


def load_pool(name: str | Path = "demo", train_args: tuple[str, ...] = ()) -> Pool:
    """Pool ``name`` (or a JSONL path) with everything each selector needs (computed once, then
    cached), scored by the bundle trained on it (with ``train_args``: ``pool_bundle``)."""
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.scoring import Scorer
    from data_juicer_daar.method.text import render

    rows = read_jsonl(pool_file(name))
    texts = [render(r).text for r in rows]
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    scorer = Scorer(pool_bundle(name, train_args))
    encoded = {}

    def encode(kind: str) -> np.ndarray:
        if not encoded:
            enc = scorer.backbone.encode(texts, progress=True)
            encoded.update(features=enc.features, embeddings=enc.embeddings)
        return encoded[kind]

    backbone_key = key + json.dumps(scorer.bundle.manifest.to_dict()["backbone"], sort_keys=True)
    features = cached("features", backbone_key, lambda: encode("features"))
    embeddings = cached("embeddings", backbone_key, lambda: encode("embeddings"))
    scores = scorer.score_features(features, np.array([bool(t) for t in texts]))
    return Pool(
        str(name),
        rows,
        [r["source_domain"] for r in rows],
        texts,
        features,
        embeddings,
        scores.predictor,
        scores.probe_entropy,
        scores.domains,
        scores.probs,
        scores.subdomains,
        scorer,
    )


def row_keys(seed: int, n: int, stream: int = 0) -> np.ndarray:
    """The seed's random key per pool row (stream 0: the selectors' draws; 1, 2, ...: the fine-tune's
    row order in epoch 1, 2, ...): the same row has the same key whoever reads it."""
    return np.random.default_rng([seed, stream]).random(n)


def view(pool: Pool, among: np.ndarray, noise: np.ndarray | None = None) -> View:
    """The rows ``among`` of ``pool`` as the selectors see them (``noise``: one key per pool row)."""
    return View(
        rows=[pool.rows[i] for i in among],
        features=pool.features[among],
        entropy=pool.entropy[among],
        reward=pool.reward[among],
        probs=pool.probs[among],
        domains=[pool.domains[i] for i in among],
        subdomains=pool.subdomains[among],
        domain_names=pool.scorer.bundle.domains,
        upstream=lambda: pool.upstream[among],
        noise=(row_keys(0, len(pool.rows)) if noise is None else noise)[among],
    )


def selections(
    pool: Pool, ratio: float, among: np.ndarray | None = None, names: list[str] | None = None, seed: int = 0, crn: bool = True
) -> dict[str, list[int]]:
    """Each selector's choice of ``ratio`` of the rows ``among`` (default: all); indices into the pool.
    ``crn``: every selector reads the seed's common row keys; otherwise each draws its own."""
    among = np.arange(len(pool.rows)) if among is None else np.asarray(among)
    k = int(ratio * len(among))
    out = {}
    for name in names or SELECTORS:
        stream = 0 if crn else 1000 + zlib.crc32(name.encode())
        v = view(pool, among, row_keys(seed, len(pool.rows), stream))
        out[name] = sorted(int(among[i]) for i in SELECTORS[name](v, k, seed))
    return out
