"""Scoring with a trained bundle: texts -> domain probabilities and the two scores (probe entropy, predictor).

This is the heavy capability the ops share; they only render samples and write keys.
A text with nothing usable gets the defined no-text result: all-zero probabilities, entropy 0,
reward 0 and the domain ``keys.NO_TEXT_DOMAIN``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..keys import NO_TEXT_DOMAIN
from .backbone import Backbone
from .bundle import check_bundle, check_model, load_bundle
from .subdomains import NO_SUBDOMAIN


@dataclass
class Scores:
    """Per text, the probe's softmax, the two scores of ``keys.SCORES`` by their names, the domain
    and the sub-domain."""

    probs: np.ndarray  # (n, K) probe softmax; zeros for no-text samples
    probe_entropy: np.ndarray  # (n,) probe entropy in [0, ln K]
    predictor: np.ndarray  # (n,) predicted diversity reward, clipped to [0, ln K]
    domains: list[str]  # argmax domain name per sample
    subdomains: np.ndarray  # (n,) int sub-domain; NO_SUBDOMAIN without text


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum p ln p per row (0 ln 0 = 0)."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)


class Scorer:
    """A bundle's heads on top of its backbone.

    :param bundle_path: bundle directory written by ``daar train``.
    :param model: model to use instead of the one the bundle names (must be the same weights).
    :param batch_size: texts per backbone forward pass.
    :param device: "cpu", "cuda", ...; ``None`` picks cuda when present.
    :param dtype: backbone number format, see ``Backbone`` ("auto"/``None``: ``resolve_dtype``).
    """

    def __init__(
        self, bundle_path: str | Path, model: str | None = None, batch_size: int = 32, device: str | None = None, dtype: str | None = None
    ) -> None:
        self.bundle = load_bundle(bundle_path)
        m = self.bundle.manifest
        model_dir = check_model(m, bundle_path, model)  # where the model loads, so each Ray node checks its own copy
        self.backbone = Backbone(
            model_dir,
            num_layers=m.backbone.num_layers,
            max_length=m.backbone.max_length,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
        )
        self.domains = self.bundle.domains
        self.max_entropy = math.log(len(self.domains))

    @staticmethod
    def check(bundle_path: str | Path, model: str | None = None) -> None:
        """What building a ``Scorer`` would refuse, checked without loading the heads or the model
        (no torch kernel runs: ops call it before Data-Juicer forks its workers)."""
        check_bundle(bundle_path, model)

    @property
    def heads_id(self) -> str:
        return self.bundle.heads_id

    def to(self, device: str) -> Scorer:
        self.backbone.to(device)
        return self

    @torch.inference_mode()
    def score_features(self, features: np.ndarray, has_text: np.ndarray) -> Scores:
        """Heads on precomputed features (n, d); rows with ``has_text`` False get the no-text result."""
        x = torch.from_numpy(features)
        probs = torch.softmax(self.bundle.probe(x), dim=-1)  # (n, K)
        reward = self.bundle.predictor(x).squeeze(-1).clamp(0.0, self.max_entropy)  # (n,)
        mask = torch.from_numpy(has_text)
        probs = probs * mask.unsqueeze(-1)
        reward = reward * mask
        top = probs.argmax(-1).tolist()
        domains = [self.domains[j] if ok else NO_TEXT_DOMAIN for j, ok in zip(top, has_text)]
        subs = np.full(len(features), NO_SUBDOMAIN, dtype=np.int64)
        subs[has_text] = self.bundle.subdomains.assign(features[has_text])
        return Scores(probs.numpy(), entropy(probs).numpy(), reward.numpy(), domains, subs)

    def score(self, texts: Sequence[str], progress: bool = False) -> Scores:
        """Score rendered texts ("" = no usable text)."""
        features = self.backbone.encode(texts, progress=progress).features
        return self.score_features(features, np.array([bool(t) for t in texts], dtype=bool))
