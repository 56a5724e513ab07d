"""Shared fixtures: a tiny random Llama (real transformers model + real BPE tokenizer) built locally,
small real JSONL corpora, and a bundle trained on the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import build_tiny_model, theme_rows, write_jsonl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: runs dj-process, dj-analyze, Ray, the daar command or the default model in subprocesses (deselect with -m 'not "
        "slow' for a fast inner loop; CI runs all)",
    )


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """The default model and demo data are cached once per test session, outside the user's cache."""
    if "DAAR_CACHE_DIR" not in os.environ:
        os.environ["DAAR_CACHE_DIR"] = str(tmp_path_factory.mktemp("daar_cache"))
    # module fixtures run before each test's own store is set: they get this one, never the user's cache
    os.environ["DAAR_SCORE_STORE"] = str(tmp_path_factory.mktemp("session_score_store"))
    yield


@pytest.fixture(autouse=True)
def _score_store(tmp_path_factory, monkeypatch):
    """Each test starts with an empty score store of its own (the ops' default store is the user's cache)."""
    monkeypatch.setenv("DAAR_SCORE_STORE", str(tmp_path_factory.mktemp("score_store")))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 4-block random Llama with a byte-level BPE tokenizer trained on the test themes."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def theme_corpus(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "pool.jsonl", theme_rows())


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_model, theme_corpus) -> Path:
    """A bundle trained on the tiny model with all training defaults (seed examples only: fast, deterministic)."""
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig

    config = TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=30), folds=3)
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    DaarTrainer(config).fit(read_jsonl(theme_corpus)).save(out)
    return out
