"""``daar train``: stage 1 (synthesis, centroids, pseudo-labels) and stage 2 (the two heads).

The backbone runs once over the probe set (one pass gives block-L features and embedding-layer
vectors); both heads are then fitted on the cached tensors with mini-batches, so epochs cost
milliseconds, not forward passes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from loguru import logger
from scipy.stats import spearmanr
from tqdm import tqdm

from .backbone import Backbone, pick_device
from .bundle import SYNTHETIC, read_manifest, read_synthetic, save_bundle
from .centroids import centroids, pseudo_labels
from .corpus import CorpusError
from .domains import Domain, load_domains
from .heads import Head, default_hidden
from .models import model_fingerprint, resolve_model
from .scoring import entropy
from .synthesis import DomainSynthesis, Generator, SynthesisConfig, synthesize
from .text import TEMPLATE_VERSION, TextFields, render
from .version import __version__


@dataclass
class TrainConfig:
    model: str | None = None  # backbone; None = the default model
    instruct_model: str | None = None  # writes the synthetic examples; None = same as ``model``
    domains_file: str | None = None  # None = the built-in four domains
    num_layers: int = 3  # L: decoder blocks kept (paper: layers 1-10 reach 91-94 % probe accuracy)
    max_length: int = 1024  # tokens per sample; longer samples are truncated
    batch_size: int = 32  # texts per backbone forward pass
    probe_size: int = 5000  # pool samples that get pseudo-labels and train the heads
    seeds_only: bool = False  # use the domain file's examples, generate nothing
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    hidden: list[int] | None = None  # head widths; None = 2d, d, d/2, 256 (paper)
    lr: float = 1e-3
    weight_decay: float = 0.01
    head_batch_size: int = 128
    max_epochs: int = 200
    patience: int = 10  # epochs without validation improvement before stopping
    val_fraction: float = 0.2
    entropy_targets: str = "cross_fit"  # "cross_fit" (out-of-fold) or "in_sample" (the paper's)
    folds: int = 5  # folds for cross-fitted entropy targets
    fields: TextFields = field(default_factory=TextFields)
    device: str | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        if self.entropy_targets not in ("cross_fit", "in_sample"):
            raise ValueError(f"entropy_targets must be 'cross_fit' or 'in_sample', got {self.entropy_targets!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.probe_size < 2 or self.folds < 2:
            raise ValueError(f"probe_size and folds must be >= 2, got {self.probe_size} and {self.folds}")


def new_head(dim: int, out: int, hidden: list[int], seed: int) -> Head:
    """A freshly initialised head; the seed fixes its initial weights."""
    torch.manual_seed(seed)
    return Head(dim, out, hidden)


def fit_head(head: Head, x: torch.Tensor, y: torch.Tensor, val: np.ndarray, config: TrainConfig, seed: int) -> dict:
    """Fit ``head`` on rows not in ``val`` with AdamW; early stopping on the ``val`` rows' loss.

    ``y`` holds class indices (cross-entropy) for a K-output head, targets (MSE) for a 1-output head.
    """
    classify = y.dtype == torch.long
    loss_fn = torch.nn.functional.cross_entropy if classify else torch.nn.functional.mse_loss
    train = np.setdiff1d(np.arange(len(x)), val)
    head.set_standardisation(x[train])
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    xt, yt, xv, yv = x[train], y[train], x[val], y[val]

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        out = head(inputs)
        return out if classify else out.squeeze(-1)

    best, best_state, best_epoch, epoch = math.inf, None, 0, 0
    for epoch in range(config.max_epochs):
        head.train()
        for batch in torch.randperm(len(xt), generator=gen).split(config.head_batch_size):
            opt.zero_grad()
            loss_fn(predict(xt[batch]), yt[batch]).backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(predict(xv), yv))
        if val_loss < best - 1e-6:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    head.load_state_dict(best_state)
    head.eval()
    return {"val_loss": best, "best_epoch": best_epoch + 1, "epochs": epoch + 1}


class DaarTrainer:
    """Estimator-shaped trainer: ``DaarTrainer(config).fit(rows)`` then ``.save(out)``.

    Learned state (set only by ``fit``): ``probe_``, ``predictor_``, ``manifest_``, ``synthetic_``.
    """

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    # -- stage 1 ---------------------------------------------------------------------------
    def _synthesis_key(self, domains: list[Domain], backbone: Backbone, instruct_dir: Path) -> str:
        c = self.config
        payload = {
            "backbone": backbone.fingerprint,
            "instruct": None if c.seeds_only else model_fingerprint(instruct_dir),
            "domains": [d.as_dict() for d in domains],
            "synthesis": None if c.seeds_only else asdict(c.synthesis),
            "max_length": c.max_length,
            "template": TEMPLATE_VERSION,
            "seed": c.seed,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _synthesize(self, domains: list[Domain], backbone: Backbone, reuse_from: Path | None) -> list[DomainSynthesis]:
        c = self.config
        instruct_dir = resolve_model(c.instruct_model) if c.instruct_model else backbone.model_dir
        key = self._synthesis_key(domains, backbone, instruct_dir)
        self._synthesis_key_value = key
        if reuse_from is not None and (reuse_from / SYNTHETIC).is_file():
            try:
                previous = read_manifest(reuse_from)
            except Exception:  # noqa: BLE001 - an unreadable old bundle is simply not reused
                previous = {}
            if previous.get("synthesis", {}).get("key") == key:
                logger.info(f"reusing the synthetic examples of {reuse_from} (same model, domains and options)")
                results = {d.name: DomainSynthesis(d.name) for d in domains}
                for row in read_synthetic(reuse_from):
                    r = results[row["domain"]]
                    r.examples.append({k: row[k] for k in ("instruction", "input", "output")})
                    r.origins.append(row["origin"])
                for name, summary in previous["synthesis"]["per_domain"].items():
                    results[name].generated = summary["generated"]
                    results[name].malformed = summary["malformed"]
                    results[name].too_similar = summary["too_similar"]
                return list(results.values())
        generate = None
        if not c.seeds_only:
            generate = Generator(instruct_dir, backbone.device, c.synthesis)
        embed = lambda texts: backbone.encode(texts).embeddings  # noqa: E731
        return synthesize(domains, generate, embed, c.synthesis, c.seed)

    # -- the whole fit ---------------------------------------------------------------------
    def fit(self, rows: list[dict], reuse_from: str | Path | None = None) -> "DaarTrainer":
        """Train on pool ``rows``; ``reuse_from`` names an earlier bundle whose synthesis may be reused."""
        c = self.config
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        domains = load_domains(c.domains_file)
        k = len(domains)
        rendered = [render(r, c.fields) for r in rows]
        usable = [i for i, r in enumerate(rendered) if r.text]
        if len(usable) < k:
            raise CorpusError(f"the corpus has {len(usable)} rows with usable text; at least K={k} (one per domain) are needed")
        if len(usable) < len(rows):
            logger.warning(f"{len(rows) - len(usable)} of {len(rows)} corpus rows have no usable text and are not used for training")
        rng = np.random.default_rng(c.seed)
        probe_idx = np.sort(rng.choice(usable, size=min(c.probe_size, len(usable)), replace=False))
        backbone = Backbone(c.model, c.num_layers, c.max_length, c.batch_size, pick_device(c.device))
        timings["load_backbone_s"] = time.perf_counter() - t0

        t = time.perf_counter()
        synth = self._synthesize(domains, backbone, Path(reuse_from) if reuse_from else None)
        timings["synthesis_s"] = time.perf_counter() - t

        t = time.perf_counter()
        encoded = backbone.encode([rendered[i].text for i in probe_idx], progress=True)
        timings["features_s"] = time.perf_counter() - t

        t = time.perf_counter()
        synth_vectors = [backbone.encode([render(e).text for e in s.examples]).embeddings for s in synth]
        pseudo = pseudo_labels(encoded.embeddings, centroids(synth_vectors), c.seed)
        timings["pseudo_labels_s"] = time.perf_counter() - t

        t = time.perf_counter()
        x = torch.from_numpy(encoded.features)
        labels = torch.from_numpy(pseudo.labels)
        hidden = c.hidden or default_hidden(backbone.dim)
        n = len(x)
        val = np.sort(np.random.default_rng(c.seed + 1).permutation(n)[: max(1, int(round(n * c.val_fraction)))])
        probe = new_head(backbone.dim, k, hidden, c.seed)
        probe_fit = fit_head(probe, x, labels, val, c, c.seed)
        with torch.no_grad():
            probe_acc = float((probe(x[val]).argmax(-1) == labels[val]).float().mean())
        targets = self._entropy_targets(probe, x, labels, hidden, k)
        predictor = new_head(backbone.dim, 1, hidden, c.seed + 2)
        predictor_fit = fit_head(predictor, x, targets, val, c, c.seed + 2)
        with torch.no_grad():
            pred_val = predictor(x[val]).squeeze(-1).numpy()
        rho = spearmanr(pred_val, targets[val].numpy()).statistic
        timings["heads_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0

        metrics = {
            "probe_val_accuracy": round(probe_acc, 4),
            "probe_val_loss": round(probe_fit["val_loss"], 6),
            "probe_epochs": probe_fit["epochs"],
            "predictor_val_mse": round(predictor_fit["val_loss"], 6),
            "predictor_val_spearman": round(float(rho), 4) if np.isfinite(rho) else None,
            "predictor_epochs": predictor_fit["epochs"],
            "entropy_target_mean": round(float(targets.mean()), 4),
            "cluster_sizes": dict(zip([d.name for d in domains], pseudo.cluster_sizes)),
            "centroid_shift": dict(zip([d.name for d in domains], pseudo.centroid_shift)),
            "n_pool": len(rows),
            "n_pool_no_text": len(rows) - len(usable),
            "n_probe": int(n),
            "n_val": int(len(val)),
            "timings_s": {key: round(v, 2) for key, v in timings.items()},
        }
        self.probe_, self.predictor_ = probe, predictor
        self.pseudo_labels_ = pseudo.labels
        self.probe_indices_ = probe_idx
        self.synthetic_ = [
            {"domain": s.name, "origin": o, **e} for s in synth for e, o in zip(s.examples, s.origins)
        ]
        config = asdict(c)
        self.manifest_ = {
            "package_version": __version__,
            "backbone": {
                "model": backbone.model_label,
                "fingerprint": backbone.fingerprint,
                "num_layers": c.num_layers,
                "dim": backbone.dim,
                "pooling": "masked_mean(final_norm(block_L))",
                "max_length": c.max_length,
            },
            "text": {"template": TEMPLATE_VERSION, "fields": config.pop("fields")},
            "domains": [{"name": d.name, "description": d.description} for d in domains],
            "heads": {"hidden": hidden, "standardised_input": True},
            "synthesis": {
                "key": self._synthesis_key_value,
                "seeds_only": c.seeds_only,
                "per_domain": {s.name: s.summary() for s in synth},
            },
            "training": config,
            "metrics": metrics,
        }
        return self

    def _entropy_targets(self, probe: Head, x: torch.Tensor, labels: torch.Tensor, hidden: list[int], k: int) -> torch.Tensor:
        """Entropy of the probe's softmax per sample: out-of-fold by default, else in-sample."""
        c = self.config
        if c.entropy_targets == "in_sample":
            with torch.no_grad():
                return entropy(torch.softmax(probe(x), -1))
        order = np.random.default_rng(c.seed + 3).permutation(len(x))
        targets = torch.zeros(len(x))
        for fold, held in enumerate(tqdm(np.array_split(order, c.folds), desc="cross-fit entropy", leave=False)):
            rest = np.sort(np.setdiff1d(order, held))  # the held-out fold never touches its head
            stop = np.sort(np.random.default_rng(c.seed + 10 + fold).permutation(len(rest))[: max(1, len(rest) // 10)])
            head = new_head(x.shape[1], k, hidden, c.seed + 10 + fold)
            fit_head(head, x[rest], labels[rest], stop, c, c.seed + 10 + fold)
            with torch.no_grad():
                targets[held] = entropy(torch.softmax(head(x[held]), -1))
        return targets

    def save(self, out: str | Path) -> Path:
        """Write the bundle (atomic)."""
        return save_bundle(out, self.manifest_, self.probe_, self.predictor_, self.synthetic_)
