"""The lifecycle every DaaR op shares inside Data-Juicer: parameters, run-time checks, model, reuse-or-score, failures.

* Building an op stores and checks its parameters (``ScoringSettings``, checked by ``options``) and
  reads the bundle's small manifest (its domain names and identity); nothing else.
* ``ScoringOp.preflight`` runs the checks that look at files and the running recipe, once per op
  and process: the bundle and model check (once per process for every op on the same bundle),
  the recipe's paths, dropped rows, the Ray head watch.
* The scorer (bundle heads + truncated backbone) is loaded lazily, once per worker process, through
  Data-Juicer's ``prepare_model``/``get_model``, so the model is never pickled with the op.
* ``ScoringOp.values`` is the one path by which every op gets its values: reused under the rule of
  ``reuse.py``, else scored here.
* Every batch method an op defines is wrapped by ``ScoringOp.__init_subclass__``: a batch that fails
  in a worker is written down as a ``Failure`` record, and ``run`` stops the run on it instead of
  letting Data-Juicer drop the batch's rows.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from data_juicer.utils import model_utils
from data_juicer.utils.constant import Fields
from loguru import logger

from ..errors import ConfigError, ScoringFailed
from ..keys import NO_TEXT_DOMAIN
from ..method.backbone import DTYPE_CHOICES, resolve_dtype
from ..method.bundle import read_manifest
from ..method.cpu_share import CpuShare
from ..method.scoring import Scorer
from ..method.text import Rendered, TextFields, render
from ..options import Flag, Name, Number, OneOf, Settings, declared, option, settings
from . import progress
from .dropped_rows import input_rows, warn_dropped_rows
from .processes import die_with_parent
from .ray_watch import in_ray_driver, ray_job, ray_node, watch_head
from .recipe_paths import check_running_recipe
from .reuse import VALUE_NAMES, carried_mask, other_tag, scoring_tag, stored_values
from .score_store import ScoreStore, Stored, default_root, summarize, text_keys

MODEL_TYPE = "daar_scorer"
#: set to 0 to turn the Ray head watch off for every op (the op parameter ``watch_ray_head`` does it per op)
WATCH_ENV = "DAAR_WATCH_RAY_HEAD"
#: the batch methods of Data-Juicer's ops that ``ScoringOp`` accounts for, in every op that defines one
BATCH_METHODS = ("process_batched", "compute_stats_batched")


def _load_scorer(bundle_path: str, model: str | None = None, batch_size: int = 32, dtype: str | None = None, device: str = "cpu") -> Scorer:
    return Scorer(bundle_path, model=model, batch_size=batch_size, device=device, dtype=dtype)


# registering a loader is how a plugin joins Data-Juicer's model management (a dict entry; Ray
# workers that only unpickle an op need it too)
model_utils.MODEL_FUNCTION_MAPPING.setdefault(MODEL_TYPE, _load_scorer)


_CHUNK = 1000  # rows rendered and scored together: the most a kill loses per worker
_ARROW_BATCH = 65536  # rows of the stats and meta columns read at a time for the start line
_stores: dict[tuple[str, str], ScoreStore] = {}  # this process's open score stores by (folder, tag)
_sized: set[Path] = set()  # store folders whose size this process reported

_running = 0  # ScoringOp.run calls in progress in this process
_fork_hook = False  # whether the fork hooks are registered
_forked_by_main_thread = False  # set in the parent just before a fork, read in the child
_bundles_checked: set[tuple] = set()  # (bundle, model, heads) the preflight checked in this process (forked workers inherit it)
#: where the running op's workers note failed batches, and how many torch threads each takes: set by
#: ``ScoringOp.run`` in the environment (which forked and spawned workers inherit), not on the op,
#: so the op's attributes, and with them Data-Juicer's cache fingerprint, are the same on every run
FAILURE_ENV = "DAAR_FAILURE_LOG"
THREADS_ENV = "DAAR_WORKER_THREADS"


def _temp_file(prefix: str) -> str:
    fd, path = tempfile.mkstemp(prefix=prefix)
    os.close(fd)
    return path


def _before_fork() -> None:
    global _forked_by_main_thread
    _forked_by_main_thread = threading.current_thread() is threading.main_thread()


def _in_forked_worker() -> None:
    """In a worker Data-Juicer forks while a DaaR op runs: SIGTERM ends the process again, and the
    worker dies with its parent.

    A handler installed earlier in the parent (``ray.init`` installs one that shuts a Ray node
    down) is inherited by forked workers; when a worker fails, the pool's ``terminate`` sends the
    others SIGTERM and joins them, and a worker whose handler does not exit keeps the run hanging.
    A worker whose parent is killed (``kill -9`` of ``dj-process``) would otherwise wait forever
    for work: the kernel kills it with its parent (Linux; only for workers forked by the parent's
    main thread, which lives as long as the parent)."""
    if not _running:
        return
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread: nothing inherited there to undo
        pass
    if _forked_by_main_thread:
        die_with_parent(signal.SIGKILL)


def _register_fork_hooks() -> None:
    """Register the fork hooks once per process (at the first run, not at import)."""
    global _fork_hook
    if not _fork_hook:
        os.register_at_fork(before=_before_fork, after_in_child=_in_forked_worker)
        _fork_hook = True


@dataclass(frozen=True)
class ScoringSettings(Settings):
    """The parameters every DaaR op takes beside its text fields, each with its rule (``options``)."""

    bundle_path: str = option("", check=Name("a bundle directory"))
    model_path: str | None = option(None, check=Name("a model directory", nullable=True))
    model_batch_size: int = option(32, check=Number(integer=True, low=1, what="a positive integer"))
    model_dtype: str | None = option("auto", check=OneOf(DTYPE_CHOICES, nullable=True))
    watch_ray_head: bool = option(True, check=Flag())
    score_store: bool = option(True, check=Flag())
    score_store_dir: str | None = option(None, check=Name("a folder", nullable=True))


def row_values(stored: Stored, issues: Sequence[str], tag: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per row, every value of ``reuse.VALUE_NAMES`` by name (the domain by its name in ``names``),
    and ``bundle``: the tag it was scored under."""
    return [
        {
            "domain": names[d] if d >= 0 else NO_TEXT_DOMAIN,
            "subdomain": int(sub),
            "probs": p,
            "predictor": pred,
            "probe_entropy": ent,
            "issue": issue,
            "bundle": tag,
        }
        for d, sub, p, pred, ent, issue in zip(
            stored.domain.tolist(),
            stored.subdomain.tolist(),
            stored.probs.tolist(),
            stored.predictor.tolist(),
            stored.probe_entropy.tolist(),
            issues,
        )
    ]


@dataclass(frozen=True)
class Failure:
    """A batch that failed in a worker: its rows and the first line of the error."""

    rows: int
    error: str  # exception type
    message: str

    @classmethod
    def of(cls, rows: int, exc: Exception) -> Failure:
        return cls(rows, type(exc).__name__, (str(exc).strip().splitlines() or [""])[0][:300])


def _accounted(method: Callable) -> Callable:
    """``method`` (a batch method) whose failure is noted for ``run`` before it propagates."""

    @functools.wraps(method)
    def wrapper(self, samples, *args, **kwargs):
        try:
            return method(self, samples, *args, **kwargs)
        except Exception as exc:
            self.note_failure(len(next(iter(samples.values()), [])), exc)
            raise

    wrapper.accounted = True
    return wrapper


class ScoringOp:
    """Base of the DaaR ops: the shared parameters, the run-time checks (``preflight``), lazy
    per-worker model loading, the one reuse-or-score path (``values``) and the failure accounting
    that stops a run instead of losing rows.

    Data-Juicer reads an op's parameters from the ``__init__`` signatures along its MRO, so the
    shared parameters are declared once, here, keyword-only; each op's own ``__init__`` takes its
    own parameters and passes the rest on. From Data-Juicer's op it reads ``_name``, ``text_key``,
    ``instruction_key``, ``runtime_np()`` and ``use_cuda()``, and wraps its ``run``.
    """

    wanted: tuple[str, ...] = VALUE_NAMES  # the values the op reads per row (of ``reuse.VALUE_NAMES``)
    reuse_hint = ""  # said when this op scores rows no earlier op scored (selectors: how to avoid it)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name in BATCH_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "accounted", False):
                setattr(cls, name, _accounted(method))

    def __init__(
        self,
        *args,
        bundle_path: str = declared(ScoringSettings, "bundle_path"),
        model_path: str | None = declared(ScoringSettings, "model_path"),
        model_batch_size: int = declared(ScoringSettings, "model_batch_size"),
        model_dtype: str = declared(ScoringSettings, "model_dtype"),
        text_format: str = declared(TextFields, "fmt"),
        input_key: str = declared(TextFields, "input_key"),
        output_key: str = declared(TextFields, "output_key"),
        messages_key: str = declared(TextFields, "messages_key"),
        conversations_key: str = declared(TextFields, "conversations_key"),
        watch_ray_head: bool = declared(ScoringSettings, "watch_ray_head"),
        score_store: bool = declared(ScoringSettings, "score_store"),
        score_store_dir: str | None = declared(ScoringSettings, "score_store_dir"),
        probe_path: str | None = None,
        **kwargs,
    ):
        """
        The parameters every DaaR op takes (docs/ops.md).

        :param bundle_path: bundle directory written by ``daar train`` (required).
        :param model_path: backbone directory to use instead of the one the bundle names; it must
            hold the same weights (checked). ``None`` uses the bundle's model.
        :param model_batch_size: texts per backbone forward pass (default 32).
        :param model_dtype: backbone number format: "auto" (default: bfloat16 on CUDA and on CPUs
            with native bfloat16, else float32), "bfloat16", "float16" or "float32". Part of the
            scores' tag: a later op reuses a stored score only when it runs in the same format.
        :param text_format: "auto" recognises the form per sample (Alpaca, messages, ShareGPT,
            text); or force "alpaca", "messages", "sharegpt", "text".
        :param input_key: Alpaca input field; the instruction field is ``instruction_key``.
        :param output_key: Alpaca output field.
        :param messages_key: chat field holding a list of ``{"role", "content"}`` turns.
        :param conversations_key: ShareGPT field holding a list of ``{"from", "value"}`` turns.
        :param watch_ray_head: in a Ray driver joined to a cluster, stop the run in one line when
            the head stops answering (default true; ``DAAR_WATCH_RAY_HEAD=0`` turns it off for all).
        :param score_store: keep every scored row in the score store and take stored rows from it,
            so a killed or repeated run scores only the rows it has not scored (default true).
        :param score_store_dir: the store's folder; ``None`` (default) uses ``$DAAR_SCORE_STORE``,
            else ``~/.cache/data_juicer_daar/scores`` (``$XDG_CACHE_HOME`` when set). On a multi-node
            Ray cluster it must be a folder every node mounts.
        :param probe_path: the old name of ``bundle_path`` (deprecated).
        :param args: extra args
        :param kwargs: extra args
        """
        super().__init__(*args, **kwargs)
        if probe_path is not None:
            if bundle_path:
                raise ConfigError(f"{self._name}: set bundle_path only (probe_path is its old name)")
            logger.warning(f"{self._name}: probe_path is deprecated, call it bundle_path")
            bundle_path = probe_path
        self.settings = settings(
            self._name,
            ScoringSettings,
            bundle_path=str(bundle_path) if isinstance(bundle_path, Path) else bundle_path,
            model_path=str(model_path) if isinstance(model_path, Path) else model_path,
            model_batch_size=model_batch_size,
            model_dtype=model_dtype,
            watch_ray_head=watch_ray_head,
            score_store=score_store,
            score_store_dir=str(score_store_dir) if isinstance(score_store_dir, Path) else score_store_dir,
        )
        self.text_fields = settings(
            self._name,
            TextFields,
            rename={"fmt": "text_format"},
            fmt=text_format,
            instruction_key=self.instruction_key,
            input_key=input_key,
            output_key=output_key,
            messages_key=messages_key,
            conversations_key=conversations_key,
            text_key=self.text_key,
        )
        self.bundle_path = str(Path(bundle_path).resolve())
        manifest = read_manifest(self.bundle_path)  # a small JSON file: the bundle's domains and identity
        self.domain_names = manifest.domain_names
        # part of the op's cache fingerprint: retraining into the same path invalidates cached results
        self.heads_id = manifest.heads_id
        self.dtype = resolve_dtype(model_dtype, "cuda" if self.use_cuda() else "cpu")
        self.tag = scoring_tag(self.heads_id, self.text_fields, self.dtype)
        self.model_key = model_utils.prepare_model(
            MODEL_TYPE, bundle_path=self.bundle_path, model=model_path, batch_size=model_batch_size, dtype=model_dtype
        )
        # resolved where the op is built, so Ray workers (whose environment is the cluster's) use the driver's folder
        store_dir = self.settings.score_store_dir
        self.store_root = (
            str(Path(store_dir).expanduser().resolve() if store_dir else default_root().resolve()) if self.settings.score_store else None
        )
        self.preflown = False
        if in_ray_driver():  # the Ray executor runs no op method on the driver before rows are scored
            self.preflight()

    def preflight(self) -> None:
        """The run-time checks, before any row is scored, once per op and process: the bundle (weights
        against the manifest) and its model (directory, config, fingerprint), the running recipe's
        paths, the rows Data-Juicer dropped, a folder mixing formats, the score store's folder, and in
        a Ray driver the head watch and the progress lines. Runs from ``run`` under the default
        executor (before Data-Juicer forks its workers), at construction in a Ray driver, and before
        the first row is scored anywhere else (``score_texts``)."""
        if self.preflown:
            return
        bundle = (self.bundle_path, self.settings.model_path, self.heads_id)  # retrained in place: checked again
        if bundle not in _bundles_checked:  # hashing the weights once per process is enough for every op on them
            Scorer.check(self.bundle_path, self.settings.model_path)
            _bundles_checked.add(bundle)
        check_running_recipe()  # the recipe of this run (a process may run several): paths only, cheap
        warn_dropped_rows()
        store = self.store()
        if in_ray_driver():
            if self.settings.watch_ray_head and os.environ.get(WATCH_ENV, "1") != "0":
                watch_head(self._name)
            if store is not None:
                store.mark_driver(ray_job())
                progress.Watch(self._name, store.progress_file(ray_job(), self._name), input_rows(), None).start()
        self.preflown = True

    def store(self, tag: str | None = None, names: Sequence[str] | None = None) -> ScoreStore | None:
        """This process's score store of ``tag`` (the op's own by default; ``names``: its domains),
        opened once per process; None when the op's ``score_store`` is off."""
        if not self.settings.score_store:
            return None
        tag, names = tag or self.tag, list(names or self.domain_names)
        key = (self.store_root, tag)
        if key not in _stores:
            info = {"bundle": self.bundle_path, "domains": names, "dtype": self.dtype, "text": asdict(self.text_fields)}
            _stores[key] = ScoreStore(self.store_root, tag, len(names)).open(info, ray_job())
        return _stores[key]

    def _progress_file(self) -> str | None:
        """Where this worker notes its batches: the running op's file (default executor), or under
        Ray the job's file in the score store; None without either."""
        if os.environ.get(progress.PROGRESS_ENV):
            return os.environ[progress.PROGRESS_ENV]
        store = self.store() if ray_job() else None
        return str(store.progress_file(ray_job(), self._name)) if store is not None else None

    def run(self, dataset, *args, **kwargs):
        self.preflight()
        # Data-Juicer pins each worker process to one torch thread; with fewer workers than cores
        # that leaves cores idle, so each worker takes its share of the cores free now (CPU only).
        workers = max(1, self.runtime_np() or 1)
        # (the free cores are measured only when the workers leave some: a 0.25 s look)
        threads = 1 if workers >= (os.cpu_count() or 1) else max(1, CpuShare().threads() // workers)
        # with skip_op_error, Data-Juicer drops the rows of a batch that raised and carries on; the
        # workers note every failure here, so the run stops instead of ending with rows missing
        failure_log, progress_log = (_temp_file(f"daar-{what}-") for what in ("failures", "progress"))
        saved = {name: os.environ.get(name) for name in (FAILURE_ENV, THREADS_ENV, progress.PROGRESS_ENV)}
        os.environ.update({FAILURE_ENV: failure_log, THREADS_ENV: str(threads), progress.PROGRESS_ENV: progress_log})
        global _running
        _register_fork_hooks()
        _running += 1
        watch = self._start(dataset, progress_log)
        try:
            out = super().run(dataset, *args, **kwargs)
            lines = Path(failure_log).read_text(encoding="utf-8").splitlines()
        finally:
            _running -= 1
            if watch is not None:
                watch.stop()
            for path in (failure_log, progress_log):
                Path(path).unlink(missing_ok=True)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        failures = [Failure(**json.loads(line)) for line in lines]
        if failures:
            first = failures[0]
            raise ScoringFailed(
                f"{self._name}: scoring failed in {len(failures)} batch(es), {sum(f.rows for f in failures)} rows "
                f"({first.error}: {first.message}); stopping so that no row is lost silently"
            )
        return out

    def _start(self, dataset, progress_log: str) -> progress.Watch | None:
        """The start line (rows, already scored, to score) for a Data-Juicer dataset, and the watch
        that logs the rate and ETA while the op runs; None when the op will score nothing."""
        if not hasattr(dataset, "iter") or not len(dataset):
            return None
        store = self.store()
        if store is not None:
            if store.root not in _sized:
                _sized.add(store.root)
                tags = summarize(store.root)
                logger.info(
                    f"score store {store.root}: {sum(t.rows for t in tags):,} rows under {len(tags)} tag(s), "
                    f"{sum(t.bytes for t in tags) / 1e6:.1f} MB; `daar store` lists them and prunes the ones no longer needed"
                )
        n = len(dataset)
        carried = self._carried(dataset)
        stored = 0
        if store is not None and not carried.all():
            # chunks another run or an earlier op added, read only when some rows need them (forked
            # workers inherit the index); the driver holds no index when earlier ops scored every row
            if store.refresh():  # an empty store holds nothing to look up
                texts = dataset.select(np.flatnonzero(~carried)).remove_columns(
                    [c for c in (Fields.stats, Fields.meta) if c in dataset.column_names]
                )
                for batch in texts.iter(batch_size=_CHUNK):
                    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
                    stored += len(store.lookup(text_keys([render(row, self.text_fields).text for row in rows]))[0])
        carried = int(carried.sum())
        to_score = n - carried - stored
        if store is None:
            ready = f"{carried:,} already scored by an earlier op (score store off)"
        else:
            ready = f"{carried + stored:,} already scored ({carried:,} by an earlier op, {stored:,} in the score store {store.dir})"
        logger.info(f"{self._name}: {n:,} rows: {ready}, {to_score:,} to score")
        return progress.Watch(self._name, progress_log, n, to_score).start() if to_score else None

    def _carried(self, dataset) -> np.ndarray:
        """Per row, whether it carries this op's values from an earlier op: from the Arrow columns
        when they are structs, else row by row (``stored_values``)."""
        columns = dataset.select_columns([c for c in (Fields.stats, Fields.meta) if c in dataset.column_names])
        if not columns.column_names:
            return np.zeros(len(dataset), dtype=bool)
        parts = [carried_mask(table, self.tag, self.wanted) for table in columns.with_format("arrow").iter(batch_size=_ARROW_BATCH)]
        if all(part is not None for part in parts):
            return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
        out = []
        for batch in columns.iter(_CHUNK):
            m = len(next(iter(batch.values()), []))
            stats, metas = batch.get(Fields.stats) or [None] * m, batch.get(Fields.meta) or [None] * m
            out += [stored_values(st, me, self.tag, self.wanted) is not None for st, me in zip(stats, metas)]
        return np.array(out, dtype=bool) if out else np.zeros(len(dataset), dtype=bool)

    def note_failure(self, rows: int, exc: Exception) -> None:
        """Record, from a worker, that a batch of ``rows`` failed (read back by ``run``)."""
        failure_log = os.environ.get(FAILURE_ENV)
        if failure_log:
            with open(failure_log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(Failure.of(rows, exc))) + "\n")

    def _scorer(self, rank: int | None = None) -> Scorer:
        scorer = model_utils.get_model(self.model_key, rank=rank, use_cuda=self.use_cuda())
        threads = int(os.environ.get(THREADS_ENV) or 0)
        if threads and scorer.backbone.device == "cpu" and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return scorer

    def score_texts(self, texts: Sequence[str], rank: int | None = None) -> tuple[Stored, str, list[str]]:
        """Score rendered texts with the backbone: (their scores, the tag they were scored under, the
        domain names the scores index)."""
        self.preflight()
        t0 = time.perf_counter()
        scorer = self._scorer(rank)
        t1 = time.perf_counter()
        scores = scorer.score(list(texts))
        t2 = time.perf_counter()
        load = f", model load {t1 - t0:.1f} s" if t1 - t0 > 0.05 else ""
        logger.info(
            f"{self._name}: backbone embedded {len(texts)} samples in {t2 - t1:.1f} s "
            f"({len(texts) / max(t2 - t1, 1e-9):.1f}/s{load}){ray_node()}"
        )
        index = {name: i for i, name in enumerate(scorer.domains)}
        domain = np.array([index.get(d, -1) for d in scores.domains], dtype=np.int64)  # the no-text domain: -1
        stored = Stored(domain, scores.subdomains, scores.probs, scores.predictor, scores.probe_entropy)
        return stored, scoring_tag(scorer.heads_id, self.text_fields, scorer.backbone.dtype), list(scorer.domains)

    def score_rendered(self, rendered: Sequence[Rendered], rank: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """The values of rendered rows (``row_values``): taken from the score store where it holds
        them, else scored and kept there; and how many were scored."""
        issues = [r.issue for r in rendered]
        odd = Counter(i for i in issues if i)
        if odd:
            logger.warning(
                f"{self._name}: {sum(odd.values())} of {len(issues)} samples had unusual text {dict(odd)}; each got a defined "
                "result and was kept"
            )
        texts = [r.text for r in rendered]
        out: list[dict[str, Any] | None] = [None] * len(texts)
        store = self.store()
        if store is not None:
            keys = text_keys(texts)
            found, stored = store.lookup(keys)
            if len(found):
                for j, v in zip(found.tolist(), row_values(stored, [issues[j] for j in found], self.tag, self.domain_names)):
                    out[j] = v
        missing = [j for j, v in enumerate(out) if v is None]
        if missing:
            scored, tag, names = self.score_texts([texts[j] for j in missing], rank)
            if store is not None:
                self.store(tag, names).add(keys[missing], scored)
            for j, v in zip(missing, row_values(scored, [issues[j] for j in missing], tag, names)):
                out[j] = v
        return out, len(missing)

    def values(
        self,
        wanted: Sequence[str],
        stats: Sequence[Any],
        metas: Sequence[Any],
        rows_of: Callable[[list[int]], Sequence[Any]],
        rank: int | None = None,
    ) -> list[dict[str, Any]]:
        """The one reuse-or-score path of every op: per row, the ``wanted`` values (of
        ``reuse.VALUE_NAMES``) and ``bundle``, the tag they belong to. Values an earlier op stored
        under this op's tag are reused; every other row is taken from the score store or scored
        here, ``rows_of(indices)`` giving its samples, in chunks the store keeps whole."""
        out = [stored_values(stat, meta, self.tag, wanted) for stat, meta in zip(stats, metas)]
        todo = [i for i, v in enumerate(out) if v is None]
        where = self._progress_file()
        if len(out) > len(todo):
            progress.note(where, len(out) - len(todo), len(out) - len(todo), 0)
        if not todo:
            return out
        stale = sum(other_tag(stats[i], metas[i], self.tag) for i in todo)
        if stale:
            logger.info(
                f"{self._name}: {stale} of {len(out)} samples carried DaaR values of another bundle or text setting; scoring them again"
            )
        if self.reuse_hint and len(todo) > stale:
            logger.info(
                f"{self._name}: {len(todo) - stale} of {len(out)} samples have no DaaR values from an earlier op; taking them "
                f"from the score store or scoring them here ({self.reuse_hint})"
            )
        for start in range(0, len(todo), _CHUNK):
            chunk = todo[start : start + _CHUNK]
            scored, fresh = self.score_rendered([render(row, self.text_fields) for row in rows_of(chunk)], rank)
            for i, v in zip(chunk, scored):
                out[i] = v
            progress.note(where, len(chunk), len(chunk) - fresh, fresh)
        return out

    def batch_values(self, wanted: Sequence[str], samples: dict[str, list], rank: int | None = None) -> list[dict[str, Any]]:
        """``values`` for a Data-Juicer batch (a dict of equal-length columns)."""
        n = len(next(iter(samples.values())))
        stats = samples.get(Fields.stats) or [None] * n
        metas = samples.get(Fields.meta) or [None] * n
        return self.values(wanted, stats, metas, lambda rows: [{k: col[i] for k, col in samples.items()} for i in rows], rank)
