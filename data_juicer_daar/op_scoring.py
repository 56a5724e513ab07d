"""Scoring inside Data-Juicer ops: model management, reuse across ops, odd-sample accounting.

The scorer (bundle heads + truncated backbone) is loaded lazily, once per worker process, through
Data-Juicer's ``prepare_model``/``get_model``; the op itself only carries the bundle path and
fingerprint, so the model is never pickled with it. The mapper stores the reward next to the domain
meta and the filter its stat, each tagged with the scoring tag (bundle heads + text settings); a
later op reuses a value only under its own tag (``reusable``), else it scores the row again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from data_juicer.utils import model_utils
from data_juicer.utils.constant import Fields
from loguru import logger

from . import keys
from .bundle import manifest_fingerprint
from .scoring import Scorer, Scores, check_bundle
from .text import FORMATS, TextFields, render

MODEL_TYPE = "daar_scorer"
SCORE_KEYS = keys.SCORE_KEYS


def _load_scorer(probe_path: str, model: str | None = None, batch_size: int = 32, device: str = "cpu") -> Scorer:
    return Scorer(probe_path, model=model, batch_size=batch_size, device=device)


# registering a loader is how a plugin joins Data-Juicer's model management (no other side effect)
model_utils.MODEL_FUNCTION_MAPPING.setdefault(MODEL_TYPE, _load_scorer)


@dataclass
class Scored:
    """Scores of one batch, one entry per row."""

    domains: list[str]
    probs: list[list[float]]
    reward: list[float]
    entropy: list[float]
    issues: list[str]
    tag: str  # scoring tag of the heads that actually scored the batch and the op's text settings


class ScoringOp:
    """Mixin for the three ops: parameters shared by all, validated at construction.

    :param probe_path: bundle directory written by ``daar train``.
    :param model_path: backbone to use instead of the one the bundle names (must be the same weights;
        e.g. the model's path on this node). ``None`` uses the bundle's.
    :param model_batch_size: texts per backbone forward pass.
    :param text_format: "auto" (recognise Alpaca / messages / text per sample), "alpaca",
        "messages" or "text".
    :param input_key: Alpaca input field (the instruction field is ``instruction_key``).
    :param output_key: Alpaca output field.
    :param messages_key: chat field (a list of role/content dicts).
    """

    def _init_scoring(
        self,
        probe_path: str,
        model_path: str | None,
        model_batch_size: int,
        text_format: str,
        input_key: str,
        output_key: str,
        messages_key: str,
    ) -> None:
        if not isinstance(probe_path, (str, Path)) or not str(probe_path):
            raise ValueError(f"{self._name}: probe_path must be a bundle directory, got {probe_path!r}")
        if not isinstance(model_batch_size, int) or isinstance(model_batch_size, bool) or model_batch_size < 1:
            raise ValueError(f"{self._name}: model_batch_size must be a positive integer, got {model_batch_size!r}")
        if text_format not in FORMATS:
            raise ValueError(f"{self._name}: text_format must be one of {', '.join(FORMATS)}, got {text_format!r}")
        # everything checkable without the forward pass fails here, at start, in one line: a worker's
        # error would be swallowed by skip_op_error and its rows dropped
        manifest, _ = check_bundle(probe_path, model_path)
        self.probe_path = str(Path(probe_path).resolve())
        self.domain_names = [d["name"] for d in manifest["domains"]]
        # part of the op's cache fingerprint: retraining into the same path invalidates cached results
        self.bundle_fingerprint = manifest_fingerprint(manifest)
        self.text_fields = TextFields(
            fmt=text_format,
            instruction_key=self.instruction_key,
            input_key=input_key,
            output_key=output_key,
            messages_key=messages_key,
            text_key=self.text_key,
        )
        self.tag = scoring_tag(self.bundle_fingerprint, self.text_fields)
        self.model_key = model_utils.prepare_model(
            MODEL_TYPE, probe_path=self.probe_path, model=model_path, batch_size=model_batch_size
        )

    def run(self, dataset, *args, **kwargs):
        # Data-Juicer pins each worker process to one torch thread; with fewer workers than cores
        # that leaves cores idle, so each worker takes its share of them back (CPU only).
        self.cpu_threads = max(1, (os.cpu_count() or 1) // max(1, self.runtime_np() or 1))
        # with skip_op_error, Data-Juicer drops the rows of a batch that raised and carries on; the
        # workers note every failure here, so the run stops instead of ending with rows missing
        fd, self.failure_log = tempfile.mkstemp(prefix="daar-failures-")
        os.close(fd)
        try:
            out = super().run(dataset, *args, **kwargs)
            failures = Path(self.failure_log).read_text(encoding="utf-8").splitlines()
        finally:
            Path(self.failure_log).unlink(missing_ok=True)
        if failures:
            lost = sum(int(line.split(" ", 1)[0]) for line in failures)
            raise ScoringFailed(
                f"{self._name}: scoring failed in {len(failures)} batch(es), {lost} rows ({failures[0].split(' ', 1)[1]}); "
                "stopping so that no row is lost silently"
            )
        return out

    def note_failure(self, rows: int, exc: Exception) -> None:
        """Record, from a worker, that a batch of ``rows`` failed (read back by ``run``)."""
        path = getattr(self, "failure_log", None)
        if path:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"{rows} {type(exc).__name__}: {first}\n")

    def _scorer(self, rank: int | None = None) -> Scorer:
        scorer = model_utils.get_model(self.model_key, rank=rank, use_cuda=self.use_cuda())
        threads = getattr(self, "cpu_threads", None)
        if threads and scorer.backbone.device == "cpu" and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return scorer

    def score_rows(self, columns: dict[str, list], rows: Sequence[int], rank: int | None = None) -> Scored:
        """Render and score the given rows of a batch; counts odd samples in one log line."""
        rendered = [render({k: columns[k][i] for k in columns if not k.startswith("__dj__")}, self.text_fields) for i in rows]
        t0 = time.perf_counter()
        scorer = self._scorer(rank)
        t1 = time.perf_counter()
        scores: Scores = scorer.score([r.text for r in rendered])
        t2 = time.perf_counter()
        load = f", model load {t1 - t0:.1f} s" if t1 - t0 > 0.05 else ""
        logger.info(f"{self._name}: backbone embedded {len(rows)} samples in {t2 - t1:.1f} s ({len(rows) / max(t2 - t1, 1e-9):.1f}/s{load})")
        issues = [r.issue for r in rendered]
        odd = Counter(i for i in issues if i)
        if odd:
            logger.warning(f"{self._name}: {sum(odd.values())} of {len(rows)} samples had unusual text {dict(odd)}; each got a defined result and was kept")
        tag = scoring_tag(scorer.fingerprint, self.text_fields)
        return Scored(scores.domains, scores.probs.tolist(), scores.reward.tolist(), scores.entropy.tolist(), issues, tag)

    def meta_column(self, columns: dict[str, list]) -> list:
        return columns.get(Fields.meta) or [None] * len(next(iter(columns.values())))


class ScoringFailed(RuntimeError):
    """Scoring failed in a worker after the op was built; the run must not go on without those rows."""


def guarded(method: Callable) -> Callable:
    """Wrap an op's batch method: a failure is noted for ``ScoringOp.run`` before it propagates."""

    @functools.wraps(method)
    def wrapper(self, samples, *args, **kwargs):
        try:
            return method(self, samples, *args, **kwargs)
        except Exception as exc:
            self.note_failure(len(next(iter(samples.values()), [])), exc)
            raise

    return wrapper


def scoring_tag(bundle_fingerprint: str, fields: TextFields) -> str:
    """What a stored DaaR value depends on: the bundle's heads and how rows were rendered."""
    return hashlib.sha256(json.dumps([bundle_fingerprint, asdict(fields)], sort_keys=True).encode()).hexdigest()[:16]


def reusable(record: Any, tag: str, key: str) -> Any:
    """``record[key]`` when ``record`` (a row's meta or stats dict) was written under ``tag``, else
    None. The one rule by which every op, Ray workers included, reuses an earlier op's value."""
    if isinstance(record, dict) and record.get(keys.BUNDLE) == tag:
        return record.get(key)
    return None


def stored_score(stat: Any, meta: Any, tag: str, source: str) -> float | None:
    """The ``source`` score ("predictor" or "probe_entropy") an earlier op stored for a row under
    ``tag``: the filter's stat, else the mapper's meta; None when neither holds one."""
    value = reusable(stat, tag, SCORE_KEYS[source])
    if value is None and source == "predictor":
        value = reusable(meta, tag, keys.DIVERSITY)
    elif value is None:
        probs = reusable(meta, tag, keys.DOMAIN_PROBS)
        value = None if probs is None else probs_entropy(probs)
    return None if value is None else float(value)


def probs_entropy(probs: Sequence[float]) -> float:
    """Entropy of a stored probability vector (0 for the no-text all-zero vector)."""
    p = np.asarray(probs, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
