"""Sub-domains: kept in the bundle, written by the mapper, read by the coverage selection."""

import json
import shutil

import numpy as np
import pytest
from data_juicer.utils.constant import Fields
from helpers import run_ops, theme_rows
from safetensors.torch import load_file, save_file

from data_juicer_daar import keys
from data_juicer_daar.method.bundle import WEIGHTS, BundleError, _sha256, load_bundle
from data_juicer_daar.method.corpus import read_jsonl
from data_juicer_daar.method.scoring import Scorer
from data_juicer_daar.method.selection import select
from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig
from data_juicer_daar.ops import DaarDomainProbeMapper, DaarTopkRewardSelector

TEXTS = lambda rows: [f"### Instruction:\n{r['instruction']}\n\n### Response:\n{r['output']}" for r in rows]  # noqa: E731


def test_bundle_round_trip_of_the_subdomains(tiny_model, theme_corpus, tmp_path):
    rows = read_jsonl(theme_corpus)
    trainer = DaarTrainer(
        TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=5), folds=2, subdomains=7)
    ).fit(rows)
    trainer.save(tmp_path / "b")
    bundle = load_bundle(tmp_path / "b")
    assert bundle.manifest.subdomain_count == 7 and bundle.subdomains.count == 7
    sizes = bundle.manifest.metrics["subdomain_sizes"]
    assert len(sizes) == 7 and sum(sizes) == len(rows) and min(sizes) >= 1
    for name in ("mean", "scale", "centroids"):
        np.testing.assert_array_equal(getattr(bundle.subdomains, name), getattr(trainer.subdomains_, name))
    scored = Scorer(tmp_path / "b").score(TEXTS(rows))
    assert scored.subdomains.dtype == np.int64 and set(scored.subdomains.tolist()) <= set(range(7))
    assert np.bincount(scored.subdomains, minlength=7).tolist() == sizes  # the probe set was the whole pool
    assert Scorer(tmp_path / "b").score([""]).subdomains.tolist() == [-1]  # no text: no sub-domain


def test_mapper_writes_each_rows_subdomain(tiny_bundle):
    rows = theme_rows(4)
    metas = run_ops([DaarDomainProbeMapper(bundle_path=str(tiny_bundle))], rows)[Fields.meta]
    expected = Scorer(tiny_bundle).score(TEXTS(rows)).subdomains.tolist()
    assert [m[keys.SUBDOMAIN] for m in metas] == expected
    assert all(isinstance(m[keys.SUBDOMAIN], int) for m in metas) and len(set(expected)) > 4


def test_coverage_selector_fills_subdomain_quotas(tiny_bundle):
    rows = theme_rows(6)
    one = {"bundle_path": str(tiny_bundle), "num_proc": None, "auto_op_parallelism": False}
    picked = run_ops([DaarDomainProbeMapper(**one), DaarTopkRewardSelector(**one, topk=10, mode="overall", coverage=True)], rows)["id"]
    scores = Scorer(tiny_bundle).score(TEXTS(rows))
    expected = select(scores.probe_entropy, scores.domains, 10, groups=scores.subdomains)
    assert picked == [rows[i]["id"] for i in expected]
    plain = select(scores.probe_entropy, scores.domains, 10)
    assert len(set(scores.subdomains[expected])) > len(set(scores.subdomains[plain]))  # more sub-domains kept


def test_bundle_of_the_older_format_is_refused_in_one_line(tiny_bundle, tmp_path):
    # what an older version wrote: format 1, no sub-domains, no manifest digest
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    tensors = {k: v for k, v in load_file(str(old / WEIGHTS)).items() if not k.startswith("subdomains.")}
    save_file(tensors, str(old / WEIGHTS))
    manifest = json.loads((old / "manifest.json").read_text())
    for key in ("subdomains", "manifest_sha256"):
        manifest.pop(key)
    manifest.update(format_version=1, weights_sha256=_sha256(old / WEIGHTS))
    (old / "manifest.json").write_text(json.dumps(manifest))
    for build in (
        lambda: DaarTopkRewardSelector(bundle_path=str(old), topk=3, coverage=True),
        lambda: DaarDomainProbeMapper(bundle_path=str(old)),
    ):
        with pytest.raises(BundleError, match=r"has format 1, written by an older version .* retrain it with `daar train`") as err:
            build()
        assert "\n" not in str(err.value)
