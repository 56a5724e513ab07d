import json
import math

import numpy as np
import pytest

from conftest import theme_rows, write_jsonl
from data_juicer_daar.bundle import BundleError, load_bundle, read_synthetic
from data_juicer_daar.centroids import centroids, pseudo_labels
from data_juicer_daar.corpus import CorpusError, read_jsonl
from data_juicer_daar.domains import DomainFileError, load_domains
from data_juicer_daar.scoring import Scorer
from data_juicer_daar.synthesis import SynthesisConfig, parse_example
from data_juicer_daar.training import DaarTrainer, TrainConfig


def tiny_config(tiny_model, **kw):
    base = dict(model=str(tiny_model), num_layers=2, max_length=64, seeds_only=True, max_epochs=30, folds=3)
    return TrainConfig(**{**base, **kw})


# -- stage 1 pieces ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, expected",
    [
        ("Instruction: Add 2 and 3.\nInput: none\nOutput: 5", {"instruction": "Add 2 and 3.", "input": "", "output": "5"}),
        ("**Instruction:** Name a fruit\n**Output:** apple\nInstruction: second one", {"instruction": "Name a fruit", "input": "", "output": "apple"}),
        ("instructions: Sort\nthe list\nInput: [3, 1]\nAnswer: [1, 3]", {"instruction": "Sort\nthe list", "input": "[3, 1]", "output": "[1, 3]"}),
    ],
)
def test_parse_example_accepts_variants(answer, expected):
    assert parse_example(answer) == expected


@pytest.mark.parametrize("answer", ["", "Here is a nice example!", "Instruction: only a task", "Instruction: t\nOutput: none", "Output: 5"])
def test_parse_example_rejects_malformed(answer):
    assert parse_example(answer) is None


def test_default_domains_are_four_with_seeds():
    domains = load_domains()
    assert [d.name for d in domains] == ["common_sense", "reasoning", "mathematics", "coding"]
    assert all(len(d.examples) >= 5 and d.description for d in domains)


@pytest.mark.parametrize(
    "content, message",
    [
        ("domains: []", "at least 2 domains"),
        ("domains:\n  - {name: a, description: x}\n  - {name: a, description: y}", "must be unique"),
        ("domains:\n  - {name: a}\n  - {name: b, description: y}", "needs a non-empty string 'description'"),
        ("domains:\n  - {name: '<x>', description: d}\n  - {name: b, description: y}", "reserved"),
        ("domains: [unclosed", "not valid YAML"),
    ],
)
def test_bad_domain_files(tmp_path, content, message):
    path = tmp_path / "domains.yaml"
    path.write_text(content)
    with pytest.raises(DomainFileError, match=message):
        load_domains(path)


def test_kmeans_starts_at_centroids_and_reports():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.1, (20, 4)) + [5, 0, 0, 0], rng.normal(0, 0.1, (30, 4)) + [0, 5, 0, 0]
    init = centroids([a[:3], b[:3]])
    result = pseudo_labels(np.vstack([a, b]), init, seed=0)
    assert result.labels.tolist() == [0] * 20 + [1] * 30
    assert result.cluster_sizes == [20, 30]
    assert all(0 <= s < 0.01 for s in result.centroid_shift)
    with pytest.raises(ValueError, match="at least K=2"):
        pseudo_labels(a[:1], init, seed=0)


# -- the whole fit -------------------------------------------------------------------------------
def test_train_seeds_only_learns_the_themes(tiny_bundle, theme_corpus):
    bundle = load_bundle(tiny_bundle)
    m = bundle.manifest
    assert m["backbone"]["num_layers"] == 2 and m["backbone"]["max_length"] == 64
    assert m["text"]["template"] == "daar-text-v1"
    assert [d["name"] for d in m["domains"]] == ["common_sense", "reasoning", "mathematics", "coding"]
    metrics = m["metrics"]
    assert sum(metrics["cluster_sizes"].values()) == metrics["n_probe"] == 120
    assert 0.0 <= metrics["probe_val_accuracy"] <= 1.0 and metrics["predictor_val_mse"] >= 0
    assert 0 <= metrics["entropy_target_mean"] <= math.log(4)
    assert set(metrics["timings_s"]) >= {"synthesis_s", "features_s", "pseudo_labels_s", "heads_s"}
    synthetic = read_synthetic(tiny_bundle)
    assert len(synthetic) == 20 and {r["origin"] for r in synthetic} == {"seed"}


def test_same_seed_same_bundle(tiny_model, theme_corpus, tmp_path):
    rows = read_jsonl(theme_corpus)
    a = DaarTrainer(tiny_config(tiny_model)).fit(rows)
    b = DaarTrainer(tiny_config(tiny_model)).fit(rows)
    assert a.pseudo_labels_.tolist() == b.pseudo_labels_.tolist()
    strip = lambda m: {k: v for k, v in m["metrics"].items() if k != "timings_s"}  # noqa: E731
    assert strip(a.manifest_) == strip(b.manifest_)
    for key, value in a.predictor_.state_dict().items():
        assert value.equal(b.predictor_.state_dict()[key])
    c = DaarTrainer(tiny_config(tiny_model, seed=7)).fit(rows)
    assert strip(c.manifest_) != strip(a.manifest_)


def test_in_sample_targets_are_more_confident(tiny_model, theme_corpus):
    rows = read_jsonl(theme_corpus)
    cross = DaarTrainer(tiny_config(tiny_model)).fit(rows).manifest_["metrics"]["entropy_target_mean"]
    inside = DaarTrainer(tiny_config(tiny_model, entropy_targets="in_sample")).fit(rows).manifest_["metrics"]["entropy_target_mean"]
    assert inside <= cross


def test_generation_runs_and_is_reused(tiny_model, theme_corpus, tmp_path):
    synth = SynthesisConfig(warmup=2, n_per_domain=7, max_attempts=2, batch=2, max_new_tokens=12)
    config = tiny_config(tiny_model, seeds_only=False, synthesis=synth)
    rows = read_jsonl(theme_corpus)
    out = tmp_path / "gen"
    first = DaarTrainer(config).fit(rows)
    first.save(out)
    summary = first.manifest_["synthesis"]["per_domain"]["coding"]
    assert summary["generated"] == 4  # warm-up 2 + one augmentation round of 2
    assert summary["seeds"] == 5 and summary["generated"] == summary["accepted"] + summary["malformed"] + summary["too_similar"]
    again = DaarTrainer(config).fit(rows, reuse_from=out)
    assert again.synthetic_ == first.synthetic_
    assert again.manifest_["synthesis"] == first.manifest_["synthesis"]


def test_scorer_outputs(tiny_bundle):
    scorer = Scorer(tiny_bundle)
    scores = scorer.score(["Solve 2 + 3 * x = 14 for x.", "", "def f9(x):\n    return x * 4"])
    assert scores.probs.shape == (3, 4)
    np.testing.assert_allclose(scores.probs[[0, 2]].sum(1), 1.0, atol=1e-5)
    assert scores.domains[1] == "<no text>" and not scores.probs[1].any() and scores.reward[1] == 0
    assert ((scores.reward >= 0) & (scores.reward <= math.log(4) + 1e-6)).all()


# -- bad corpora ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ('{"instruction": "ok"}\nnot json\n', ":2: not valid JSON"),
        ('["a list"]\n', "expected a JSON object"),
    ],
)
def test_bad_corpus_files(tmp_path, content, message):
    path = tmp_path / "pool.jsonl"
    path.write_text(content)
    with pytest.raises(CorpusError, match=message):
        read_jsonl(path)


def test_rows_without_text_or_fewer_than_k(tiny_model, tmp_path):
    with pytest.raises(CorpusError, match="at least K=4"):
        DaarTrainer(tiny_config(tiny_model)).fit([{"instruction": None}, {"text": ""}, {"foo": 1}])
    with pytest.raises(CorpusError, match="has 2 rows with usable text"):
        DaarTrainer(tiny_config(tiny_model)).fit([{"text": "a b"}, {"text": "c d"}])


# -- bundle round trip and corruption ------------------------------------------------------------
def test_bundle_round_trip_scores_identically(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    texts = ["Why do people carry umbrellas on day 3?", "Anna is taller than Ben4. Who is shorter?"]
    np.testing.assert_array_equal(Scorer(tiny_bundle).score(texts).reward, Scorer(copy).score(texts).reward)


def _damage(bundle, tmp_path, how):
    import shutil

    copy = tmp_path / "bad"
    shutil.copytree(bundle, copy)
    how(copy)
    return copy


def _edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "how, message",
    [
        (lambda p: (p / "manifest.json").unlink(), "has no manifest.json"),
        (lambda p: (p / "heads.safetensors").unlink(), "has no heads.safetensors"),
        (lambda p: (p / "manifest.json").write_text("{broken"), "manifest.json is unreadable"),
        (lambda p: (p / "heads.safetensors").write_bytes(b"garbage"), "is corrupted"),
        (lambda p: _edit_manifest(p, lambda m: m.update(format_version=99)), "newer than this package reads"),
        (lambda p: _edit_manifest(p, lambda m: m["heads"].update(hidden=[8, 8])), "weights do not match the manifest"),
        (lambda p: _edit_manifest(p, lambda m: m.pop("domains")), "manifest is incomplete"),
    ],
)
def test_bundle_corruption_is_one_clear_line(tiny_bundle, tmp_path, how, message):
    bad = _damage(tiny_bundle, tmp_path, how)
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(bad)
    assert "\n" not in str(info.value)


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")


def test_other_backbone_is_refused(tiny_bundle, tiny_model, tmp_path):
    import shutil

    other = tmp_path / "other_model"
    shutil.copytree(tiny_model, other)
    config = json.loads((other / "config.json").read_text())
    config["rms_norm_eps"] = 1e-3
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="retrain the bundle for this model"):
        Scorer(tiny_bundle, model=str(other))
