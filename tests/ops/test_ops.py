"""The three ops through the Python API and through real `dj-process` / `dj-analyze` runs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_juicer.ops.base_op import Mapper
from data_juicer.utils.constant import Fields
from helpers import HOSTILE, dj, read_rows, recipe, run_ops, theme_rows, write_jsonl

from data_juicer_daar import keys
from data_juicer_daar.dj.op_base import FAILURE_ENV, ScoringOp
from data_juicer_daar.dj.topk import TopkOp
from data_juicer_daar.errors import BundleError
from data_juicer_daar.method.backbone import Backbone
from data_juicer_daar.method.manifest import digest as _manifest_digest
from data_juicer_daar.method.models import ModelError
from data_juicer_daar.method.scoring import Scorer
from data_juicer_daar.method.text import render
from data_juicer_daar.ops import DaarDiversityScoreFilter, DaarDomainProbeMapper, DaarTopkRewardRaySelector, DaarTopkRewardSelector

BIN = Path(sys.executable).parent
# Arrow needs one type per column, so mixed-type values only arrive through Data-Juicer's JSON loader
NON_STRING = {"id": "non-string", "instruction": 12345, "input": "", "output": ["a", {"b": 1}]}


# -- Python API ----------------------------------------------------------------------------------
def test_mapper_writes_meta_with_stable_types(tiny_bundle):
    rows = theme_rows(3)
    out = run_ops([DaarDomainProbeMapper(bundle_path=str(tiny_bundle))], rows)
    domains = ["common_sense", "reasoning", "mathematics", "coding"]
    scorer = Scorer(tiny_bundle)
    for meta in out[Fields.meta]:
        assert meta[keys.DOMAIN] in domains and len(meta[keys.DOMAIN_PROBS]) == 4
        assert meta[keys.DOMAIN] == domains[int(np.argmax(meta[keys.DOMAIN_PROBS]))]
        assert isinstance(meta[keys.DIVERSITY], float) and meta[keys.ISSUE] == ""
    expected = scorer.score([f"### Instruction:\n{r['instruction']}\n\n### Response:\n{r['output']}" for r in rows])
    np.testing.assert_allclose([m[keys.DIVERSITY] for m in out[Fields.meta]], expected.predictor, atol=1e-5)


def test_filter_range_and_probe_entropy(tiny_bundle):
    rows = theme_rows(3)
    scores = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle))], rows)[Fields.stats]
    values = sorted(s[keys.DIVERSITY] for s in scores)
    cut = values[len(values) // 2]
    kept = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), score_source="predictor", min_score=cut)], rows)
    assert len(kept) == sum(v >= cut for v in values)
    below = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), score_source="predictor", max_score=cut)], rows)
    assert sorted(s[keys.DIVERSITY] for s in below[Fields.stats]) == [v for v in values if v <= cut]
    entropy = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), score_source="probe_entropy")], rows)
    mapped = run_ops([DaarDomainProbeMapper(bundle_path=str(tiny_bundle))], rows)
    for stat, meta in zip(entropy[Fields.stats], mapped[Fields.meta]):
        p = np.array(meta[keys.DOMAIN_PROBS])
        assert stat[keys.PROBE_ENTROPY] == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-5)
        assert stat[keys.DIVERSITY] == pytest.approx(meta[keys.DIVERSITY], abs=1e-5)  # each score under its own key
    by_entropy = sorted(s[keys.PROBE_ENTROPY] for s in entropy[Fields.stats])
    kept = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), min_score=by_entropy[len(rows) // 2])], rows)  # default score
    assert len(kept) == sum(v >= by_entropy[len(rows) // 2] for v in by_entropy)


def test_backbone_runs_once_for_mapper_filter_selector(tiny_bundle):
    rows = theme_rows(5)
    path = str(tiny_bundle)
    before = Backbone.texts_embedded  # counted in this process: no worker pool (num_proc None)
    one = {"bundle_path": path, "num_proc": None, "auto_op_parallelism": False}
    out = run_ops(
        [DaarDomainProbeMapper(**one), DaarDiversityScoreFilter(**one), DaarTopkRewardSelector(**one, topk=5, mode="balanced")],
        rows,
    )
    assert Backbone.texts_embedded - before == len(rows)
    assert len(out) == 5


def test_scores_of_another_bundle_text_setting_or_number_format_are_never_reused(tiny_bundle, tiny_model, theme_corpus, tmp_path):
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig

    other = tmp_path / "other"
    config = TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=20), folds=3, seed=5)
    DaarTrainer(config).fit(read_jsonl(theme_corpus)).save(other)
    rows = theme_rows(5)
    one = {"num_proc": None, "auto_op_parallelism": False}
    a = [DaarDomainProbeMapper(bundle_path=str(tiny_bundle), **one), DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), **one)]
    scored_a = run_ops(a, rows)
    carried = [{**r, Fields.meta: m, Fields.stats: st} for r, m, st in zip(rows, scored_a[Fields.meta], scored_a[Fields.stats])]

    before = Backbone.texts_embedded
    b = [
        DaarDiversityScoreFilter(bundle_path=str(other), **one),
        DaarTopkRewardSelector(bundle_path=str(other), topk=4, mode="balanced", **one),
    ]
    rescored = run_ops(b[:1], carried)
    assert Backbone.texts_embedded - before == len(rows)  # every row scored again with bundle B
    texts = [f"### Instruction:\n{r['instruction']}\n\n### Response:\n{r['output']}" for r in rows]
    fresh_b = Scorer(other).score(texts)
    np.testing.assert_allclose([st[keys.DIVERSITY] for st in rescored[Fields.stats]], fresh_b.predictor, atol=1e-5)
    assert len({st[keys.SCORING_TAG] for st in rescored[Fields.stats]} | {st[keys.SCORING_TAG] for st in scored_a[Fields.stats]}) == 2
    # the selector ranks by B's scores and B's domains, never by A's meta
    picked = run_ops(b, carried)["id"]
    expected = DaarTopkRewardSelector(bundle_path=str(other), topk=4, mode="balanced").spec.pick(
        fresh_b.probe_entropy.tolist(), fresh_b.domains, fresh_b.subdomains
    )
    assert picked == [rows[i]["id"] for i in expected]

    # the same bundle in another number format embeds again; in the format "auto" resolved to, it reuses
    other_format = "float32" if a[0].dtype == "bfloat16" else "bfloat16"
    before = Backbone.texts_embedded
    reformatted = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), model_dtype=other_format, **one)], carried)
    assert Backbone.texts_embedded - before == len(rows)
    assert {st[keys.SCORING_TAG] for st in reformatted[Fields.stats]}.isdisjoint(st[keys.SCORING_TAG] for st in scored_a[Fields.stats])
    before = Backbone.texts_embedded
    run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), model_dtype=a[0].dtype, **one)], carried)
    assert Backbone.texts_embedded == before

    # the same bundle with another text setting embeds again (here: a text field no row has -> no text)
    before = Backbone.texts_embedded
    as_text = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), text_format="text", **one)], carried)
    assert Backbone.texts_embedded - before == len(rows)
    assert [st[keys.DIVERSITY] for st in as_text[Fields.stats]] == [0.0] * len(rows)


def test_selector_scores_by_itself_when_alone(tiny_bundle):
    rows = theme_rows(5)
    path = str(tiny_bundle)
    alone = run_ops([DaarTopkRewardSelector(bundle_path=path, top_ratio=0.25)], rows)
    chained = run_ops([DaarDiversityScoreFilter(bundle_path=path), DaarTopkRewardSelector(bundle_path=path, top_ratio=0.25)], rows)
    assert alone["id"] == chained["id"] and len(alone) == 5


@pytest.mark.parametrize("source", ["probe_entropy", "predictor"])
@pytest.mark.parametrize("mode, ratios", [("overall", None), ("balanced", None), ("custom", {"coding": 0.6, "mathematics": 0.4})])
def test_selector_modes_match_reference_selection(tiny_bundle, mode, ratios, source):
    from data_juicer_daar.method.selection import TopkSpec, select, tempered_shares
    from data_juicer_daar.options import declared

    rows = theme_rows(10)
    path = str(tiny_bundle)
    scored = run_ops([DaarDomainProbeMapper(bundle_path=path), DaarDiversityScoreFilter(bundle_path=path)], rows)
    rewards = [s[keys.SCORES[source].stats_key] for s in scored[Fields.stats]]
    domains = [m[keys.DOMAIN] for m in scored[Fields.meta]]
    names = ["common_sense", "reasoning", "mathematics", "coding"]
    balanced = tempered_shares({d: domains.count(d) for d in names}, declared(TopkSpec, "share_exponent"))  # the op's default
    shares = {"overall": None, "balanced": balanced, "custom": ratios}[mode]
    expected = [rows[i]["id"] for i in select(rewards, domains, 10, shares)]
    selected = DaarTopkRewardSelector(bundle_path=path, topk=10, mode=mode, domain_ratios=ratios, score_source=source, coverage=False).run(
        scored
    )
    assert selected["id"] == expected
    assert expected == sorted(expected, key=[r["id"] for r in rows].index)  # input order kept


@pytest.mark.parametrize("exponent, cap", [(0.5, None), (1.0, 1.25), (0.0, 2.0)])
def test_selector_share_rules_match_the_reference_selection(tiny_bundle, exponent, cap):
    from data_juicer_daar.method.selection import select, tempered_shares

    rows = theme_rows(10)
    path = str(tiny_bundle)
    scored = run_ops([DaarDomainProbeMapper(bundle_path=path), DaarDiversityScoreFilter(bundle_path=path)], rows)
    scores = [s[keys.PROBE_ENTROPY] for s in scored[Fields.stats]]
    domains = [m[keys.DOMAIN] for m in scored[Fields.meta]]
    names = ["common_sense", "reasoning", "mathematics", "coding"]
    weights = tempered_shares({d: domains.count(d) for d in names}, exponent)
    expected = [rows[i]["id"] for i in select(scores, domains, 10, weights, cap=cap)]
    op = DaarTopkRewardSelector(bundle_path=path, topk=10, mode="balanced", coverage=False, share_exponent=exponent, rate_cap=cap)
    assert op.run(scored)["id"] == expected
    assert len(expected) == 10


@pytest.mark.parametrize("skip_op_error", [True, False])
def test_hostile_samples_are_kept_with_defined_results(tiny_bundle, skip_op_error):
    rows = theme_rows(2) + HOSTILE
    path = str(tiny_bundle)
    out = run_ops(
        [
            DaarDomainProbeMapper(bundle_path=path, skip_op_error=skip_op_error),
            DaarDiversityScoreFilter(bundle_path=path, skip_op_error=skip_op_error),
        ],
        rows,
    )
    assert out["id"] == [r["id"] for r in rows]
    by_id = {i: (m, s) for i, m, s in zip(out["id"], out[Fields.meta], out[Fields.stats])}
    for no_text in ("none-fields", "empty"):
        meta, stat = by_id[no_text]
        assert meta[keys.DOMAIN] == keys.NO_TEXT_DOMAIN and meta[keys.DOMAIN_PROBS] == [0.0] * 4
        assert meta[keys.ISSUE] == "no_text" and stat[keys.DIVERSITY] == 0.0
    for scored in ("huge", "odd-unicode", "messages-row"):
        meta, stat = by_id[scored]
        assert meta[keys.DOMAIN] != keys.NO_TEXT_DOMAIN and sum(meta[keys.DOMAIN_PROBS]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"topk": -1}, "topk must be a positive integer"),
        ({"topk": True}, "topk must be a positive integer"),
        ({"top_ratio": 1.5}, r"top_ratio must be a number in \(0, 1\]"),
        ({}, "set topk or top_ratio"),
        ({"top_ratio": 0}, r"top_ratio must be a number in \(0, 1\]"),
        ({"topk": 3, "mode": "fancy"}, "mode must be one of"),
        ({"topk": 3, "mode": "custom"}, "domain_ratios is required"),
        ({"topk": 3, "domain_ratios": {"coding": 1.0}}, "only allowed there"),
        ({"topk": 3, "mode": "custom", "domain_ratios": {"poetry": 1.0}}, "unknown domain"),
        ({"topk": 3, "mode": "custom", "domain_ratios": {"coding": 0.5, "mathematics": 0.2}}, "must sum to 1"),
        (
            {"topk": 3, "mode": "custom", "domain_ratios": {"coding": float("nan"), "mathematics": 1.0}},
            "must be finite non-negative numbers",
        ),
        ({"topk": 3, "mode": "custom", "domain_ratios": {"coding": float("inf")}}, "must be finite non-negative numbers"),
        ({"top_ratio": float("nan")}, r"top_ratio must be a number in \(0, 1\]"),
        ({"topk": 3, "mode": ["balanced"]}, "mode must be one of"),
        ({"topk": 3, "score_source": ["predictor"]}, "score_source must be one of predictor, probe_entropy"),
        ({"topk": 3, "coverage": "yes"}, "coverage must be true or false"),
    ],
)
def test_selector_bad_parameters(tiny_bundle, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        DaarTopkRewardSelector(bundle_path=str(tiny_bundle), **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"score_source": "vibes"}, "score_source must be one of"),
        ({"min_score": "low"}, "min_score must be a finite number or null"),
        ({"min_score": float("nan")}, "min_score must be a finite number or null, got nan"),
        ({"max_score": float("nan")}, "max_score must be a finite number or null, got nan"),
        ({"max_score": float("-inf")}, "max_score must be a finite number or null, got -inf"),
        ({"model_path": 7}, "model_path must be a model directory or null, got 7"),
        ({"input_key": 5}, "input_key must be a field name"),
        ({"output_key": ""}, "output_key must be a field name"),
        ({"messages_key": None}, "messages_key must be a field name"),
        ({"conversations_key": ["c"]}, "conversations_key must be a field name"),
        ({"text_key": 3}, "text_key must be a field name"),
        ({"model_dtype": ["bfloat16"]}, "model_dtype must be one of"),
        ({"text_format": {"a": 1}}, "text_format must be one of"),
        ({"min_score": 1.0, "max_score": 0.5}, "greater than max_score"),
        ({"model_batch_size": 0}, "model_batch_size must be a positive integer"),
        ({"text_format": "xml"}, "text_format must be one of"),
        ({"model_dtype": "float8"}, "model_dtype must be one of auto, bfloat16, float16, float32 or null"),
        ({"watch_ray_head": "no"}, "watch_ray_head must be true or false, got 'no'"),
        ({"probe_path": "elsewhere"}, r"set bundle_path only \(probe_path is its old name\)"),
    ],
)
def test_filter_bad_parameters(tiny_bundle, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), **kwargs)
    assert "\n" not in str(info.value)


def test_model_dtype_reaches_the_backbone(tiny_bundle):
    import torch

    rows = theme_rows(2)
    ops = {dtype: DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), model_dtype=dtype) for dtype in ("float32", "bfloat16")}
    stats = {dtype: [s[keys.PROBE_ENTROPY] for s in run_ops([op], rows)[Fields.stats]] for dtype, op in ops.items()}
    assert ops["bfloat16"]._scorer().backbone.model.dtype == torch.bfloat16
    assert ops["float32"]._scorer().backbone.model.dtype == torch.float32
    assert stats["bfloat16"] != stats["float32"]  # another precision ran ...
    np.testing.assert_allclose(stats["bfloat16"], stats["float32"], atol=0.05)  # ... to nearly the same scores


ALL_OPS = [DaarDomainProbeMapper, DaarDiversityScoreFilter, DaarTopkRewardSelector, DaarTopkRewardRaySelector]


@pytest.mark.parametrize("op", ALL_OPS)
def test_missing_bundle_fails_at_construction(op, tmp_path):
    selection = {"topk": 3} if issubclass(op, TopkOp) else {}
    with pytest.raises(BundleError, match=f"probe bundle {tmp_path / 'missing'} does not exist"):
        op(bundle_path=str(tmp_path / "missing"), **selection)


def damage(bundle: Path, model: Path, how: str, tmp_path: Path) -> dict:
    """Copy ``bundle`` (and the model) and break the copy in one way; returns op kwargs."""
    import shutil

    copy, model_copy = tmp_path / "bundle", tmp_path / "model"
    shutil.copytree(bundle, copy)
    shutil.copytree(model, model_copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    weights = copy / "heads.safetensors"
    if how == "heads cut in half":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "heads swapped with another bundle's":
        from safetensors.torch import load_file, save_file

        save_file({k: v * 1.5 for k, v in load_file(weights).items()}, weights)
    elif how == "fingerprint edited":
        manifest["backbone"]["fingerprint"] = "0" * 16
    elif how == "five domains over four-output heads":
        manifest["domains"].append({"name": "extra", "description": "x"})
    elif how == "dim edited":
        manifest["backbone"]["dim"] = 64
    elif how == "model config corrupted":
        (model_copy / "config.json").write_text("{not json")
    # a forged edit (digest renewed): the checks behind the manifest's digest must still catch it
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    model_path = str(tmp_path / "nonexistent") if how == "model path missing" else str(model_copy)
    return {"bundle_path": str(copy), "model_path": model_path}


@pytest.mark.parametrize(
    "how, message",
    [
        ("heads cut in half", "heads.safetensors is corrupted"),
        ("heads swapped with another bundle's", "heads.safetensors is corrupted"),
        ("fingerprint edited", "retrain the bundle for this model"),
        ("five domains over four-output heads", "weights do not match the manifest"),
        ("dim edited", "weights do not match the manifest"),
        ("model path missing", "not a local Hugging Face model directory"),
        ("model config corrupted", "config.json is unreadable or invalid"),
    ],
)
@pytest.mark.parametrize("op", [DaarDomainProbeMapper, DaarDiversityScoreFilter, DaarTopkRewardSelector])
def test_damaged_bundle_or_model_stops_the_run_before_scoring_in_one_line(op, how, message, tiny_bundle, tiny_model, tmp_path):
    """Building the op only reads the manifest; its preflight, first thing in ``run``, checks the rest."""
    kwargs = damage(tiny_bundle, tiny_model, how, tmp_path)
    if op is DaarTopkRewardSelector:
        kwargs["topk"] = 2
    built = op(**kwargs)
    with pytest.raises((BundleError, ModelError)) as error:
        run_ops([built], theme_rows(3))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert FAILURE_ENV not in os.environ  # stopped in the preflight, before any worker was started


@pytest.mark.slow
@pytest.mark.parametrize("skip_op_error", [True, False])
@pytest.mark.parametrize("op", [DaarDomainProbeMapper, DaarDiversityScoreFilter])
def test_worker_failure_stops_the_run_whatever_skip_op_error_says(op, skip_op_error, tiny_bundle, tiny_model, tmp_path):
    """The bundle is damaged after the op's preflight checked it (replaced mid-run): its workers cannot load it."""
    from data_juicer_daar.dj.op_base import ScoringFailed

    kwargs = damage(tiny_bundle, tiny_model, "none", tmp_path)
    built = op(**kwargs, skip_op_error=skip_op_error, num_proc=2)
    built.preflight()  # what ``run`` does first; once done in a process, not again
    weights = Path(kwargs["bundle_path"]) / "heads.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ScoringFailed if skip_op_error else BundleError) as error:
        run_ops([built], theme_rows(3))
    if skip_op_error:  # Data-Juicer dropped the failed batches' rows: the op says so and stops
        assert "12 rows" in str(error.value) and "heads.safetensors is corrupted" in str(error.value)
        assert "\n" not in str(error.value)


HANG_SCRIPT = """
import signal, sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[3], str(Path(sys.argv[3]).parent)]
from helpers import dataset, theme_rows
from data_juicer_daar.ops import DaarDomainProbeMapper
signal.signal(signal.SIGTERM, lambda *_: time.sleep(3600))  # an inherited handler that does not return (Ray's may block)
op = DaarDomainProbeMapper(bundle_path=sys.argv[1], model_path=sys.argv[2], num_proc=2, skip_op_error=False)
weights = Path(sys.argv[1]) / "heads.safetensors"
weights.write_bytes(weights.read_bytes()[:100])
for attempt in range(6):  # whether a worker is still alive when the pool terminates is a race: try it several times
    try:
        op.run(dataset(theme_rows(3)))
    except Exception as exc:
        print("stopped:", type(exc).__name__, flush=True)
"""


def test_a_failing_worker_ends_the_run_even_when_sigterm_is_caught(tiny_bundle, tiny_model, tmp_path):
    """Two workers, one fails: the pool terminates the other with SIGTERM; a Python SIGTERM handler
    inherited from the parent (Ray installs one) must not keep that worker, and the run, alive."""
    kwargs = damage(tiny_bundle, tiny_model, "none", tmp_path)
    script = tmp_path / "hang.py"
    script.write_text(HANG_SCRIPT)
    tests = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, str(script), kwargs["bundle_path"], kwargs["model_path"], str(tests)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tests.parent,
        env={k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"},  # as a user's run has it (unset)
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)  # the hung workers too
        raise
    assert stdout.count("stopped: BundleError") == 6, stderr[-2000:]


def test_workers_forked_while_an_op_runs_get_the_default_sigterm_and_die_with_their_parent():
    import ctypes
    import signal

    from data_juicer_daar.dj import op_base

    def death_signal() -> int:
        value = ctypes.c_int(0)
        ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
        return value.value

    before = signal.signal(signal.SIGTERM, lambda *_: None)
    op_base._register_fork_hooks()
    try:
        for running, expected in ((1, 0), (0, 1)):  # only while an op runs
            op_base._running = running
            pid = os.fork()
            if pid == 0:
                default = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
                dies = death_signal() == signal.SIGKILL
                os._exit(0 if default and dies else 1)
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == expected
    finally:
        op_base._running = 0
        signal.signal(signal.SIGTERM, before)


def test_bundle_replaced_mid_run_tags_rows_with_the_heads_that_scored_them(tiny_bundle, tiny_model, theme_corpus, tmp_path):
    import shutil

    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig

    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    one = {"bundle_path": str(path), "num_proc": None, "auto_op_parallelism": False}
    mapper = DaarDomainProbeMapper(**one)  # built with the first bundle
    config = TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=20), folds=3, seed=9)
    DaarTrainer(config).fit(read_jsonl(theme_corpus)).save(path)  # replaced before the rows are scored
    out = run_ops([mapper], theme_rows(2))
    replaced = DaarDomainProbeMapper(**one)
    assert {m[keys.SCORING_TAG] for m in out[Fields.meta]} == {replaced.tag} != {mapper.tag}
    before = Backbone.texts_embedded
    run_ops([DaarDiversityScoreFilter(**one)], [{**r, Fields.meta: m} for r, m in zip(theme_rows(2), out[Fields.meta])])
    assert Backbone.texts_embedded == before  # the tag is true, so the new bundle's ops reuse the pass


@pytest.mark.slow
def test_damaged_bundle_stops_dj_process_before_any_row(tiny_bundle, tiny_model, tmp_path):
    kwargs = damage(tiny_bundle, tiny_model, "heads cut in half", tmp_path)
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(2))
    config = recipe(tmp_path, pool, [{"daar_domain_probe_mapper": kwargs}])
    result = dj("dj-process", config, tmp_path)
    assert result.returncode != 0 and "heads.safetensors is corrupted" in result.stdout + result.stderr
    assert not (tmp_path / "out" / "selected.jsonl").exists()


@pytest.mark.parametrize("op", ALL_OPS)
def test_every_op_parameter_is_documented_once(op):
    """Each parameter is declared once along the op's MRO and documented there, once; Data-Juicer's
    own parameter check (it walks the MRO too) sees every one of them."""
    import inspect

    from data_juicer.core.preflight import _get_valid_params

    declared = {}
    for klass in op.__mro__:
        if klass.__module__.startswith("data_juicer_daar") and "__init__" in klass.__dict__:
            doc = klass.__init__.__doc__ or ""
            for name, param in inspect.signature(klass.__init__).parameters.items():
                if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    assert name not in declared, f"{name} declared twice along {op.__name__}'s MRO"
                    declared[name] = doc.count(f":param {name}:")
    assert {"bundle_path", "model_dtype", "conversations_key"} <= set(declared)
    assert all(n == 1 for n in declared.values()), f"{op.__name__}: {declared}"
    assert set(declared) <= set(_get_valid_params(op))


@pytest.mark.slow
def test_entry_point_discovery_in_fresh_interpreter(tiny_bundle):
    """A fresh interpreter that never imports this package builds all four ops from recipe entries,
    as dj-process does, and gets our classes (the mapper also as a tagging op)."""
    entries = [
        {"daar_domain_probe_mapper": {"bundle_path": str(tiny_bundle)}},
        {"daar_diversity_score_filter": {"bundle_path": str(tiny_bundle), "min_score": 0.0}},
        {"daar_topk_reward_selector": {"bundle_path": str(tiny_bundle), "topk": 3}},
        {"daar_topk_reward_ray_selector": {"bundle_path": str(tiny_bundle), "top_ratio": 0.5, "mode": "balanced"}},
    ]
    code = (
        "import json; from data_juicer.ops import load_ops, TAGGING_OPS; "
        f"ops = load_ops({entries!r}); "
        "print(json.dumps([[type(o).__module__, type(o).__name__, o._name, getattr(o, 'bundle_path', None)] for o in ops] "
        "+ [sorted(n for n in TAGGING_OPS.modules if n.startswith('daar_'))]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    *ops, tagging = json.loads(result.stdout.strip().splitlines()[-1])
    names = [next(iter(e)) for e in entries]
    assert [o[2] for o in ops] == names
    assert [o[0] for o in ops] == [f"data_juicer_daar.ops.{n}" for n in names]
    assert [o[1] for o in ops] == [
        "DaarDomainProbeMapper",
        "DaarDiversityScoreFilter",
        "DaarTopkRewardSelector",
        "DaarTopkRewardRaySelector",
    ]
    assert {o[3] for o in ops} == {str(tiny_bundle.resolve())}
    assert tagging == ["daar_domain_probe_mapper"]


@pytest.mark.slow
def test_dj_process_full_recipe_with_hostile_rows(tiny_bundle, tmp_path):
    rows = theme_rows(10) + HOSTILE[:-1] + [NON_STRING]  # a null text_keys field is dropped by Data-Juicer itself
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    path = str(tiny_bundle)
    config = recipe(
        tmp_path,
        pool,
        [
            {"daar_domain_probe_mapper": {"bundle_path": path}},
            {"daar_diversity_score_filter": {"bundle_path": path, "stats_export_path": str(tmp_path / "out" / "scored.jsonl")}},
            {"daar_topk_reward_selector": {"bundle_path": path, "top_ratio": 0.2, "mode": "balanced"}},
        ],
    )
    result = dj("dj-process", config, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    scored = read_rows(tmp_path / "out" / "scored.jsonl")
    assert [r["id"] for r in scored] == [r["id"] for r in rows]  # nothing lost
    assert {type(r[Fields.stats][keys.DIVERSITY]) for r in scored} == {float}
    assert {len(r[Fields.meta][keys.DOMAIN_PROBS]) for r in scored} == {4}
    assert scored[-1][Fields.meta][keys.ISSUE] == "coerced"
    selected = read_rows(tmp_path / "out" / "selected.jsonl")
    assert len(selected) == len(rows) // 5
    assert set(selected[0]) == set(rows[0])  # clean Alpaca rows: no Data-Juicer columns
    log = result.stderr + result.stdout
    assert "samples had unusual text" in log
    # the backbone ran once per sample across mapper, filter and selector (worker processes log it)
    assert sum(int(n) for n in re.findall(r"backbone embedded (\d+) samples", log)) == len(rows)


@pytest.mark.slow
def test_dj_process_cache_never_serves_an_older_bundle(tiny_model, theme_corpus, tmp_path):
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig

    bundle = tmp_path / "probe"
    rows = read_jsonl(theme_corpus)

    def train(seed):
        config = TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=20), folds=3, seed=seed)
        DaarTrainer(config).fit(rows).save(bundle)

    train(1)
    config = recipe(
        tmp_path,
        theme_corpus,
        [{"daar_diversity_score_filter": {"bundle_path": str(bundle), "stats_export_path": str(tmp_path / "out" / "scored.jsonl")}}],
        use_cache=True,
    )
    assert dj("dj-process", config, tmp_path).returncode == 0
    first = [r[Fields.stats][keys.DIVERSITY] for r in read_rows(tmp_path / "out" / "scored.jsonl")]
    train(2)
    assert dj("dj-process", config, tmp_path).returncode == 0
    second = [r[Fields.stats][keys.DIVERSITY] for r in read_rows(tmp_path / "out" / "scored.jsonl")]
    fresh = Scorer(bundle).score([f"### Instruction:\n{r['instruction']}\n\n### Response:\n{r['output']}" for r in rows]).predictor
    assert first != second
    np.testing.assert_allclose(second, fresh, atol=1e-5)


@pytest.mark.slow
def test_dj_process_cache_serves_our_ops_on_a_rerun_of_the_same_recipe(tiny_bundle, tmp_path):
    # the run-only state (failure log, worker threads) is kept off the op: its cache fingerprint is the same every run.
    # (Data-Juicer puts the job's work folder in every op's fingerprint, its own ops' too: a rerun is served from the
    # cache when it keeps its job_id)
    # (the score store is off: only Data-Juicer's cache can spare the second run its backbone pass)
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(10))
    op = {"bundle_path": str(tiny_bundle), "score_store": False}
    process = [{"daar_domain_probe_mapper": op}, {"daar_diversity_score_filter": op}]
    config = recipe(tmp_path, pool, process, use_cache=True, ds_cache_dir=str(tmp_path / "cache"), job_id="rerun")
    first, second = dj("dj-process", config, tmp_path), dj("dj-process", config, tmp_path)
    assert first.returncode == second.returncode == 0
    assert "backbone embedded" in first.stdout + first.stderr
    assert "backbone embedded" not in second.stdout + second.stderr, (second.stdout + second.stderr)[-3000:]
    assert len(read_rows(tmp_path / "out" / "selected.jsonl")) == 40


@pytest.mark.slow
@pytest.mark.parametrize(
    "op, params, message",
    [
        ("daar_topk_reward_selector", {"topk": 2, "mode": "fancy"}, "mode must be one of overall, balanced, custom, got 'fancy'"),
        ("daar_diversity_score_filter", {"min_score": float("nan")}, "min_score must be a finite number or null, got nan"),
    ],
)
def test_dj_process_bad_parameter_fails_at_start(tiny_bundle, tmp_path, op, params, message):
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(2))
    config = recipe(tmp_path, pool, [{op: {"bundle_path": str(tiny_bundle), **params}}])
    result = dj("dj-process", config, tmp_path)
    assert result.returncode != 0 and not (tmp_path / "out" / "selected.jsonl").exists()  # never "Left 0 samples"
    assert message in result.stdout + result.stderr


@pytest.mark.slow
def test_dj_analyze_reports_the_filter_stats(tiny_bundle, tmp_path):
    """dj-analyze's overall table holds the same numbers as scoring the rows directly."""
    import csv

    rows = theme_rows(5)
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    config = recipe(tmp_path, pool, [{"daar_diversity_score_filter": {"bundle_path": str(tiny_bundle)}}])
    result = dj("dj-analyze", config, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    overall = list((tmp_path / "out").rglob("overall.csv"))
    assert len(overall) == 1
    with overall[0].open() as fh:
        table = {r[""]: r for r in csv.DictReader(fh)}
    scores = Scorer(tiny_bundle).score([render(r).text for r in rows])
    for key, values in ((keys.DIVERSITY, scores.predictor), (keys.PROBE_ENTROPY, scores.probe_entropy)):
        assert float(table["count"][key]) == len(rows)
        for stat, expected in (("mean", values.mean()), ("min", values.min()), ("max", values.max()), ("50%", np.median(values))):
            assert float(table[stat][key]) == pytest.approx(float(expected), abs=1e-5), (key, stat)


class BrokenMapper(ScoringOp, Mapper):
    """A new op that says nothing about failures, and fails."""

    _batched_op = True

    def process_batched(self, samples, rank=None):
        raise RuntimeError("boom")


def test_a_new_op_gets_failure_accounting_without_asking_for_it(tiny_bundle):
    """``ScoringOp`` wraps every batch method an op defines: a batch that raises is counted and the
    run stops, even where Data-Juicer's ``skip_op_error`` drops the batch's rows."""
    from data_juicer_daar.errors import ScoringFailed

    op = BrokenMapper(bundle_path=str(tiny_bundle), skip_op_error=True)
    rows = theme_rows(3)
    with pytest.raises(ScoringFailed, match=rf"scoring failed in \d+ batch\(es\), {len(rows)} rows \(RuntimeError: boom\)"):
        run_ops([op], rows)
    assert FAILURE_ENV not in os.environ  # the run's failure record is gone with the run


def test_probe_path_still_names_the_bundle_with_a_warning(tiny_bundle):
    """Recipes written before the rename keep working: ``probe_path`` is ``bundle_path``'s old name."""
    from loguru import logger

    said = []
    sink = logger.add(lambda message: said.append(str(message)), level="WARNING")
    try:
        old = DaarDiversityScoreFilter(probe_path=str(tiny_bundle))
    finally:
        logger.remove(sink)
    new = DaarDiversityScoreFilter(bundle_path=str(tiny_bundle))
    assert old.bundle_path == new.bundle_path and old.tag == new.tag
    assert any("probe_path is deprecated, call it bundle_path" in line for line in said)
