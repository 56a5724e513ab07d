"""Scoring with a trained bundle: texts -> domain probabilities and the two scores (probe entropy, predictor).

This is the heavy capability the ops share; they only render samples and write keys.
A text with nothing usable gets the defined no-text result: all-zero probabilities, entropy 0,
reward 0 and the domain ``keys.NO_TEXT_DOMAIN``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

from .backbone import Backbone
from .bundle import load_bundle, verify_bundle
from .manifest import Manifest
from ..keys import NO_TEXT_DOMAIN
from .models import model_fingerprint, resolve_model
from .subdomains import NO_SUBDOMAIN
from ..errors import BundleError, ModelError


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


def check_model(manifest: Manifest, probe_path: str | Path, model: str | None = None) -> Path:
    """The backbone directory for a bundle's ``manifest``, checked without running it: directory,
    config and fingerprint against the bundle's. One-line ``ModelError``/``BundleError``."""
    facts = manifest.backbone
    model_dir = resolve_model(model or facts.model)
    try:
        json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
        fingerprint = model_fingerprint(model_dir, int(facts.num_layers))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model {model_dir}: config.json is unreadable or invalid ({type(exc).__name__})") from None
    if fingerprint != facts.fingerprint:
        raise BundleError(
            f"probe bundle {probe_path} was trained on backbone {facts.model} "
            f"(fingerprint {facts.fingerprint}) but {model_dir} has "
            f"fingerprint {fingerprint}: retrain the bundle for this model"
        )
    return model_dir


def check_bundle(probe_path: str | Path, model: str | None = None) -> tuple[Manifest, Path]:
    """Everything about a bundle and its backbone that can be checked without loading either (heads'
    digest and shapes, model directory, config, fingerprint). Returns (manifest, model directory).
    Runs no torch kernel, so ops call it before Data-Juicer forks its workers."""
    manifest = verify_bundle(probe_path)
    return manifest, check_model(manifest, probe_path, model)


class Scorer:
    """A bundle's heads on top of its backbone.

    :param probe_path: bundle directory written by ``daar train``.
    :param model: model to use instead of the one the bundle names (must be the same weights).
    :param batch_size: texts per backbone forward pass.
    :param device: "cpu", "cuda", ...; ``None`` picks cuda when present.
    :param dtype: backbone number format, see ``Backbone`` ("auto"/``None``: ``resolve_dtype``).
    """

    def __init__(
        self, probe_path: str | Path, model: str | None = None, batch_size: int = 32, device: str | None = None, dtype: str | None = None
    ) -> None:
        self.bundle = load_bundle(probe_path)
        m = self.bundle.manifest
        model_dir = check_model(m, probe_path, model)
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

    @property
    def fingerprint(self) -> str:
        return self.bundle.fingerprint

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
