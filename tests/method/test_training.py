import json
import math

import numpy as np
import pytest
import torch

from data_juicer_daar.errors import TrainingError
from data_juicer_daar.method.bundle import BundleError, load_bundle, read_synthetic
from data_juicer_daar.method.corpus import CorpusError, read_jsonl
from data_juicer_daar.method.domains import DomainFileError, load_domains
from data_juicer_daar.method.heads import Head, fit_head, fit_temperature
from data_juicer_daar.method.models import cache_dir
from data_juicer_daar.method.pseudo_labels import METHODS, pseudo_labels
from data_juicer_daar.method.scoring import Scorer
from data_juicer_daar.method.synthesis import SynthesisConfig, parse_example
from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig


def tiny_config(tiny_model, **kw):
    base = dict(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=30), folds=3)
    return TrainConfig(**{**base, **kw})


# -- stage 1 pieces ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, expected",
    [
        ("Instruction: Add 2 and 3.\nInput: none\nOutput: 5", {"instruction": "Add 2 and 3.", "input": "", "output": "5"}),
        (
            "**Instruction:** Name a fruit\n**Output:** apple\nInstruction: second one",
            {"instruction": "Name a fruit", "input": "", "output": "apple"},
        ),
        (
            "instructions: Sort\nthe list\nInput: [3, 1]\nAnswer: [1, 3]",
            {"instruction": "Sort\nthe list", "input": "[3, 1]", "output": "[1, 3]"},
        ),
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


def blobs(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Points around K orthogonal directions (``sizes`` per domain) and 3 anchors per domain."""
    rng = np.random.default_rng(seed)
    centres = np.eye(len(sizes), 8) * 5
    points = np.vstack([rng.normal(0, 0.5, (n, 8)) + c for n, c in zip(sizes, centres)])
    anchors = [rng.normal(0, 0.5, (3, 8)) + c for c in centres]
    return points, anchors


@pytest.mark.parametrize("method", METHODS)
def test_every_pseudo_label_method_recovers_separated_domains(method):
    points, anchors = blobs([20, 30, 25, 15])
    result = pseudo_labels(method, points, points, anchors, anchors, seed=0, clusters_per_domain=2)
    assert result.labels.tolist() == [0] * 20 + [1] * 30 + [2] * 25 + [3] * 15
    assert result.cluster_sizes == [20, 30, 25, 15]
    assert result.clusters == (8 if method == "overcluster_cosine" else 4)


def test_overclustering_keeps_a_skewed_pool_whole():
    # a big domain made of three sub-areas: a K-cluster cut spends clusters on it, over-clustering does not
    rng = np.random.default_rng(1)
    sub = [np.eye(1, 8, 4 + j)[0] * 3 for j in range(3)]
    big = np.vstack([rng.normal(0, 0.3, (60, 8)) + np.eye(1, 8, 0)[0] * 5 + s for s in sub])
    small = [rng.normal(0, 0.3, (n, 8)) + np.eye(1, 8, i)[0] * 5 for i, n in ((1, 12), (2, 8), (3, 5))]
    points = np.vstack([big, *small])
    anchors = [np.vstack([np.eye(1, 8, 0)[0] * 5 + s for s in sub])] + [np.eye(1, 8, i) * 5 for i in (1, 2, 3)]
    truth = [0] * 180 + [1] * 12 + [2] * 8 + [3] * 5
    assert pseudo_labels("overcluster_cosine", points, points, anchors, anchors, seed=0).labels.tolist() == truth


def test_pseudo_labels_refuse_bad_input():
    points, anchors = blobs([5, 5])
    with pytest.raises(ValueError, match="at least K=2"):
        pseudo_labels("kmeans_cosine", points[:1], points[:1], anchors, anchors, seed=0)
    with pytest.raises(ValueError, match="must be one of"):
        pseudo_labels("spectral", points, points, anchors, anchors, seed=0)


def test_fit_temperature_minimises_held_out_nll():
    torch.manual_seed(0)
    head = Head(4, 3, [8])
    x = torch.randn(400, 4)
    with torch.no_grad():
        labels = head(x).argmax(-1)
    labels[::3] = torch.randint(0, 3, (len(labels[::3]),))  # a third relabelled at random: the optimum is interior
    t = fit_temperature(head, x, labels)
    with torch.no_grad():
        raw = head.mlp((x - head.mean) / head.scale)  # logits before the temperature
    nll = lambda temp: float(torch.nn.functional.cross_entropy(raw / temp, labels))  # noqa: E731
    assert float(head.temperature) == t
    assert nll(t) <= min(nll(t * 0.8), nll(t * 1.25), nll(1.0)) + 1e-6


def test_non_finite_features_fail_in_one_line(tiny_model):
    x = torch.full((20, 4), float("nan"))
    with pytest.raises(TrainingError, match="never finite"):
        fit_head(Head(4, 2, [8]), x, torch.zeros(20, dtype=torch.long), np.arange(4), HeadConfig(max_epochs=3), seed=0, task="classify")


# -- the whole fit -------------------------------------------------------------------------------
def test_train_with_defaults_learns_the_themes(tiny_bundle, theme_corpus):
    bundle = load_bundle(tiny_bundle)
    m = bundle.manifest
    assert m.backbone.num_layers == 2 and m.backbone.max_length == 64
    assert m.text["template"] == "daar-text-v1"
    assert m.domain_names == ["common_sense", "reasoning", "mathematics", "coding"]
    metrics = m.metrics
    assert sum(metrics["cluster_sizes"].values()) == metrics["n_probe"] == 120
    assert 0.0 <= metrics["probe_val_accuracy"] <= 1.0 and metrics["predictor_val_mse"] >= 0
    assert 0 <= metrics["entropy_target_mean"] <= math.log(4)
    assert set(metrics["timings_s"]) >= {"synthesis_s", "features_s", "pseudo_labels_s", "heads_s"}
    synthetic = read_synthetic(tiny_bundle)
    assert len(synthetic) == 48 and {r["origin"] for r in synthetic} == {"seed"}
    assert m.synthesis["enabled"] is False and metrics["clusters"] == 12
    assert metrics["probe_temperature"] > 0 and m.training["pseudo_labels"] == "overcluster_cosine"


def test_same_seed_same_bundle(tiny_model, theme_corpus, tmp_path):
    rows = read_jsonl(theme_corpus)
    a = DaarTrainer(tiny_config(tiny_model)).fit(rows)
    b = DaarTrainer(tiny_config(tiny_model)).fit(rows)
    assert a.pseudo_labels_.tolist() == b.pseudo_labels_.tolist()
    strip = lambda m: {k: v for k, v in m.metrics.items() if k != "timings_s"}  # noqa: E731
    assert strip(a.manifest_) == strip(b.manifest_)
    for key, value in a.predictor_.state_dict().items():
        assert value.equal(b.predictor_.state_dict()[key])
    c = DaarTrainer(tiny_config(tiny_model, seed=7)).fit(rows)
    assert strip(c.manifest_) != strip(a.manifest_)


def test_in_sample_targets_are_more_confident(tiny_model, theme_corpus):
    rows = read_jsonl(theme_corpus)
    cross = DaarTrainer(tiny_config(tiny_model)).fit(rows).manifest_.metrics["entropy_target_mean"]
    inside = DaarTrainer(tiny_config(tiny_model, entropy_targets="in_sample")).fit(rows).manifest_.metrics["entropy_target_mean"]
    assert inside <= cross


def test_generation_runs_and_is_cached_across_pools(tiny_model, theme_corpus):
    synth = SynthesisConfig(warmup=2, n_per_domain=15, max_attempts=2, batch=2, max_new_tokens=12)
    config = tiny_config(tiny_model, synthesize=True, synthesis=synth)
    rows = read_jsonl(theme_corpus)
    first = DaarTrainer(config).fit(rows)
    summary = first.manifest_.synthesis["per_domain"]["coding"]
    assert summary["generated"] == 4  # warm-up 2 + one augmentation round of 2
    assert summary["seeds"] == 12 and summary["generated"] == summary["accepted"] + summary["malformed"] + summary["too_similar"]
    again = DaarTrainer(config).fit(rows[::2])  # another pool: same models, domains and options
    assert again.synthetic_ == first.synthetic_
    assert again.manifest_.synthesis == first.manifest_.synthesis and first.manifest_.synthesis["enabled"]
    assert again.manifest_.metrics["timings_s"]["synthesis_s"] < first.manifest_.metrics["timings_s"]["synthesis_s"]
    cached = cache_dir() / "synthesis" / f"{first.manifest_.synthesis['key']}.json"
    cached.write_text("{truncated")  # a damaged cache entry is regenerated, never a crash
    assert DaarTrainer(config).fit(rows).synthetic_ == first.synthetic_


def test_scorer_outputs(tiny_bundle):
    scorer = Scorer(tiny_bundle)
    scores = scorer.score(["Solve 2 + 3 * x = 14 for x.", "", "def f9(x):\n    return x * 4"])
    assert scores.probs.shape == (3, 4)
    np.testing.assert_allclose(scores.probs[[0, 2]].sum(1), 1.0, atol=1e-5)
    assert scores.domains[1] == "<no text>" and not scores.probs[1].any() and scores.predictor[1] == 0
    assert ((scores.predictor >= 0) & (scores.predictor <= math.log(4) + 1e-6)).all()


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
    np.testing.assert_array_equal(Scorer(tiny_bundle).score(texts).predictor, Scorer(copy).score(texts).predictor)


def _damage(bundle, tmp_path, how):
    import shutil

    copy = tmp_path / "bad"
    shutil.copytree(bundle, copy)
    how(copy)
    return copy


def _edit_manifest(path, change, resign=False):
    """Edit a bundle's manifest; ``resign`` also renews its digest (a forged edit: later checks must still hold)."""
    from data_juicer_daar.method.manifest import digest as _manifest_digest

    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    if resign:
        manifest["manifest_sha256"] = _manifest_digest(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "how, message",
    [
        (lambda p: (p / "manifest.json").unlink(), "has no manifest.json"),
        (lambda p: (p / "heads.safetensors").unlink(), "has no heads.safetensors"),
        (lambda p: (p / "manifest.json").write_text("{broken"), "manifest.json is unreadable"),
        (lambda p: (p / "heads.safetensors").write_bytes(b"garbage"), "is corrupted"),
        (lambda p: _edit_manifest(p, lambda m: m.update(format_version=99)), "newer than this package reads"),
        (lambda p: _edit_manifest(p, lambda m: m["backbone"].update(max_length=8)), "manifest.json was edited after training"),
        (lambda p: _edit_manifest(p, lambda m: m["domains"].reverse()), "manifest.json was edited after training"),
        (lambda p: _edit_manifest(p, lambda m: m["text"].update(template=0)), "manifest.json was edited after training"),
        (
            lambda p: _edit_manifest(p, lambda m: m["backbone"].update(num_layers=1, pooling="last")),
            "manifest.json was edited after training",
        ),
        (lambda p: _edit_manifest(p, lambda m: m.pop("manifest_sha256")), "manifest.json was edited after training"),
        (lambda p: _edit_manifest(p, lambda m: m.update(format_version=1)), "written by an older version"),
        (lambda p: _edit_manifest(p, lambda m: m["heads"].update(hidden=[8, 8]), resign=True), "weights do not match the manifest"),
        (lambda p: _edit_manifest(p, lambda m: m.pop("domains"), resign=True), "manifest is incomplete"),
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


def test_domain_without_examples_needs_examples_or_synthesis(tiny_model, theme_corpus, tmp_path):
    path = tmp_path / "domains.yaml"
    path.write_text("domains:\n  - {name: a, description: x, examples: [{instruction: q, output: r}]}\n  - {name: b, description: y}\n")
    with pytest.raises(ValueError, match="domain 'b' has no usable examples; add examples to the domain file, or pass --synthesize"):
        DaarTrainer(tiny_config(tiny_model, domains_file=str(path))).fit(read_jsonl(theme_corpus))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pseudo_labels": "spectral"}, "pseudo_labels must be one of overcluster_cosine, kmeans_cosine, kmeans_embedding"),
        ({"clusters_per_domain": 0}, "clusters_per_domain must be an integer >= 1, got 0"),
        ({"entropy_targets": "both"}, "entropy_targets must be one of cross_fit, in_sample"),
        ({"val_fraction": 1.0}, "val_fraction must be a finite number > 0 and < 1, got 1.0"),
        ({"val_fraction": float("nan")}, "val_fraction must be a finite number > 0 and < 1, got nan"),
        ({"heads": {"lr": float("nan")}}, "lr must be a finite number > 0 and <= 10, got nan"),
        ({"heads": {"weight_decay": float("inf")}}, "weight_decay must be a finite number >= 0, got inf"),
        ({"subdomains": 0}, "subdomains must be an integer >= 1, got 0"),
        ({"heads": {"hidden": [0]}}, "hidden must be a list of widths"),
        ({"heads": {"hidden": []}}, "hidden must be a list of widths"),
        ({"heads": {"head_batch_size": 0}}, "head_batch_size must be an integer >= 1, got 0"),
        ({"heads": {"patience": 0}}, "patience must be an integer >= 1, got 0"),
        (
            {"device": "tpu"},
            "device must be cpu, cuda, cuda:N (N below the visible GPUs) or mps (where this torch build has it) or null, got 'tpu'",
        ),
        ({"num_layers": 0}, "num_layers must be an integer >= 1, got 0"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1, got 2.5"),
        ({"max_length": 1}, "max_length must be an integer >= 2, got 1"),
        ({"seed": -1}, "seed must be an integer >= 0 and <= 4294967295, got -1"),
        ({"synthesis": {"tau": 1.5}}, "tau must be a finite number > 0 and <= 1, got 1.5"),
        ({"synthesis": {"max_new_tokens": 0}}, "max_new_tokens must be an integer >= 1, got 0"),
    ],
)
def test_bad_train_config_is_one_line(kwargs, message):
    with pytest.raises(ValueError) as error:
        built = {"heads": HeadConfig, "synthesis": SynthesisConfig}
        TrainConfig(**{k: built[k](**v) if k in built else v for k, v in kwargs.items()})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_training_warns_when_the_probe_is_at_chance_or_the_targets_are_all_equal():
    import torch
    from loguru import logger

    from data_juicer_daar.method.training import warn_if_uninformative

    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    try:
        warn_if_uninformative(0.5, np.array([0, 0, 1, 1]), torch.tensor([0.3, 0.1, 0.2]))  # majority share 0.5
        warn_if_uninformative(0.9, np.array([0, 0, 1, 1]), torch.full((4,), 0.7))
        warn_if_uninformative(0.9, np.array([0, 0, 1, 1]), torch.tensor([0.3, 0.1]))  # a useful probe: silent
    finally:
        logger.remove(sink)
    assert len(said) == 2 and "the domain probe is at chance: validation accuracy 0.500" in said[0]
    assert said[1].startswith("every entropy target is the same")
