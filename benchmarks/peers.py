"""Peer methods, re-implemented from their descriptions for side-by-side measurement only.

* ``reference_scores``: the paper's scripts' scoring: one sample at a time, padded to 1024 tokens,
  the truncated model run on all 1024 positions and averaged over them (padding included), then MLP.
* ``upstream_embed`` + ``upstream_kmeans_select``: the k-means selector proposed to Data-Juicer:
  per-sample embedding (last-token pooling, L2-normalised, up to 4096 tokens), k-means (k=3,
  k-means++, seed 42), per-sample cosines computed in a Python loop, per-cluster sorting by the
  strategy and ``max(1, int(ratio * cluster size))`` kept from each cluster.
* ``random_select`` and ``longest_select``: the simple baselines.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

from data_juicer_daar.method.backbone import Backbone
from data_juicer_daar.method.bundle import Bundle


@torch.inference_mode()
def reference_scores(backbone: Backbone, bundle: Bundle, texts: list[str], pad_to: int = 1024) -> np.ndarray:
    """Predicted reward per text, the reference way (batch of one, fixed padding, unmasked mean)."""
    tok = backbone.tokenizer
    out = np.zeros(len(texts), dtype=np.float32)
    for i, text in enumerate(texts):
        enc = tok(text, truncation=True, max_length=pad_to, padding="max_length", return_tensors="pt")
        hidden = backbone.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        feature = hidden.float().mean(1)  # (1, d): averages the padding positions too
        out[i] = float(bundle.predictor(feature).squeeze())
    return out


@torch.inference_mode()
def upstream_embed(model, tokenizer, texts: list[str], max_length: int = 4096, batch_size: int = 1) -> np.ndarray:
    """Last-token pooled, L2-normalised embeddings (batch_size=1 is the upstream way; larger batches
    are length-sorted so little padding is run; input order is kept)."""
    tokenizer.padding_side = "left"  # the last position is then every text's last real token
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in chunk], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state[:, -1].float()  # (b, d)
        vectors[chunk] = torch.nn.functional.normalize(hidden, dim=-1).numpy()
    return vectors


def upstream_kmeans_select(embeddings: np.ndarray, ratio: float, strategy: str, k: int = 3, seed: int = 42) -> list[int]:
    km = KMeans(n_clusters=k, init="k-means++", random_state=seed, n_init="auto").fit(embeddings)
    centers = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    global_mean = embeddings.mean(0)
    global_mean /= np.linalg.norm(global_mean)
    inter, intra, glob = [], [], []
    for i, vec in enumerate(embeddings):  # the per-sample Python loop of the proposal
        own = km.labels_[i]
        inter.append(sum(float(vec @ centers[j]) for j in range(k) if j != own))
        intra.append(float(vec @ centers[own]))
        glob.append(float(vec @ global_mean))
    keep = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if strategy == "inter":
            order = sorted(members, key=lambda i: inter[i])
        elif strategy == "intra":
            order = sorted(members, key=lambda i: -intra[i])
        else:
            order = sorted(members, key=lambda i: glob[i])
        keep.extend(order[: max(1, int(ratio * len(members)))])
    return sorted(int(i) for i in keep)


def random_select(n: int, k: int, seed: int = 0) -> list[int]:
    return sorted(np.random.default_rng(seed).choice(n, size=k, replace=False).tolist())


def longest_select(rows: list[dict], k: int) -> list[int]:
    words = [len(f"{r.get('instruction') or ''} {r.get('input') or ''}".split()) for r in rows]
    return sorted(np.lexsort((np.arange(len(rows)), -np.array(words)))[:k].tolist())
