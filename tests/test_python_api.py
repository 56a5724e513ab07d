"""The in-process API docs/outputs.md documents: train, score rows without Data-Juicer, run a recipe
through Data-Juicer's executor from Python."""

import math

import numpy as np
import pytest
from helpers import read_rows, recipe, theme_rows, write_jsonl


@pytest.fixture(autouse=True)
def no_recipe_left_behind():
    """Data-Juicer keeps the last recipe it read as its global config, and our ops check the paths of
    that recipe: the tests of other files run ops outside any recipe, so none is left to them."""
    yield
    from data_juicer.config import config as dj_config

    dj_config.global_cfg = None


def test_train_then_score_rows_without_data_juicer(tiny_model, theme_corpus, tmp_path):
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.scoring import Scorer
    from data_juicer_daar.method.text import TextFields, render
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig

    config = TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=20), folds=3)
    trainer = DaarTrainer(config).fit(read_jsonl(theme_corpus))
    bundle = trainer.save(tmp_path / "probe")
    assert trainer.manifest_.metrics["n_probe"] == len(read_jsonl(theme_corpus))

    rows = [
        {"instruction": "Solve 3 + 4 * x = 11 for x.", "output": "x = 2"},
        {"messages": [{"role": "user", "content": "Write a Python function that returns 5."}]},
        {"conversations": [{"from": "human", "value": "Why do people carry umbrellas?"}]},
        {"text": ""},
    ]
    scores = Scorer(bundle).score([render(r, TextFields()).text for r in rows])
    k = len(trainer.manifest_.domains)
    names = trainer.manifest_.domain_names
    assert scores.probs.shape == (4, k)
    np.testing.assert_allclose(scores.probs[:3].sum(1), 1.0, atol=1e-5)
    assert [names[j] for j in scores.probs[:3].argmax(1)] == scores.domains[:3]
    p = scores.probs[:3]
    np.testing.assert_allclose(scores.probe_entropy[:3], -(p * np.log(p)).sum(1), atol=1e-5)
    assert ((0 <= scores.predictor) & (scores.predictor <= math.log(k) + 1e-6)).all()
    # the empty row gets the defined no-text result
    assert scores.domains[3] == "<no text>" and scores.predictor[3] == 0 and not scores.probs[3].any()


@pytest.mark.slow
def test_recipe_through_data_juicers_executor(tiny_bundle, tmp_path):
    from data_juicer.config import init_configs
    from data_juicer.core import DefaultExecutor

    from data_juicer_daar.method.scoring import Scorer
    from data_juicer_daar.method.selection import TopkSpec
    from data_juicer_daar.method.text import render

    rows = theme_rows(5)
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    config = recipe(tmp_path, pool, [{"daar_topk_reward_selector": {"bundle_path": str(tiny_bundle), "topk": 6}}])
    cfg = init_configs(args=["--config", str(config)])
    result = DefaultExecutor(cfg).run()
    scorer = Scorer(tiny_bundle)
    scores = scorer.score([render(r).text for r in rows])
    rule = TopkSpec.build(6, None, "balanced", None, scorer.domains, coverage=True)  # the op's defaults, written out
    expected = rule.pick(scores.probe_entropy, scores.domains, scores.subdomains)
    assert result["id"] == [rows[i]["id"] for i in expected]
    assert [r["id"] for r in read_rows(tmp_path / "out" / "selected.jsonl")] == result["id"]


@pytest.mark.slow
def test_a_second_recipe_in_one_process_is_checked_too(tiny_bundle, tmp_path):
    """The preflight checks each op's recipe: a process that runs a good recipe, then one whose
    export is its own input, refuses the second before scoring, and the pool stays whole."""
    from data_juicer.config import init_configs
    from data_juicer.core import DefaultExecutor

    from data_juicer_daar.errors import ConfigError

    process = [{"daar_topk_reward_selector": {"bundle_path": str(tiny_bundle), "topk": 6}}]
    good = recipe(tmp_path, write_jsonl(tmp_path / "pool.jsonl", theme_rows(5)), process)
    DefaultExecutor(init_configs(args=["--config", str(good)])).run()
    pool = write_jsonl(tmp_path / "own.jsonl", theme_rows(5))
    bad = recipe(tmp_path, pool, process, export_path=str(pool))
    with pytest.raises(ConfigError, match="is the recipe's input"):
        DefaultExecutor(init_configs(args=["--config", str(bad)])).run()
    assert len(read_rows(pool)) == 20
