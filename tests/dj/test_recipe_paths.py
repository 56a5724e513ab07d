"""A recipe whose outputs would overwrite its inputs (or each other), or whose input is empty, is
refused when the first DaaR op is built, before any row is scored; the user's files stay whole."""

from argparse import Namespace
from pathlib import Path

import pytest
from helpers import dj, recipe, theme_rows, write_jsonl

from data_juicer_daar.dj.recipe_paths import check_recipe_paths
from data_juicer_daar.errors import ConfigError


def cfg(tmp_path, **paths) -> Namespace:
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(1))
    base = {"dataset_path": str(pool), "export_path": str(tmp_path / "out" / "selected.jsonl"), "process": []}
    return Namespace(**{**base, **paths})


def test_a_recipe_writing_apart_from_its_inputs_passes(tmp_path):
    filter_ = {"daar_diversity_score_filter": {"stats_export_path": str(tmp_path / "out" / "scored.jsonl")}}
    check_recipe_paths(cfg(tmp_path, process=[filter_]))
    # a store beside the inputs, or none, passes too
    store = {"score_store_dir": str(tmp_path / "store")}
    check_recipe_paths(cfg(tmp_path, process=[{"daar_domain_probe_mapper": store}, {"daar_topk_reward_selector": {"score_store": False}}]))
    check_recipe_paths(cfg(tmp_path, dataset_path=str(tmp_path / "data"), process=[{"daar_domain_probe_mapper": {"score_store": False}}]))
    # a format given by export_type, with the path spelling it: the stats file is its sibling
    check_recipe_paths(cfg(tmp_path, export_type="jsonl", export_path=str(tmp_path / "out" / "sel.jsonl")))


@pytest.mark.parametrize(
    "paths, message",
    [
        (lambda t: {"export_path": str(t / "pool.jsonl")}, "export_path {t}/pool.jsonl is the recipe's input"),
        (
            lambda t: {"export_path": str(t / "out" / "pool.jsonl"), "dataset_path": str(t / "out")},
            "export_path {t}/out/pool.jsonl is inside the recipe's input {t}/out",
        ),
        (
            lambda t: {"process": [{"daar_diversity_score_filter": {"stats_export_path": str(t / "pool.jsonl")}}]},
            "daar_diversity_score_filter's stats_export_path {t}/pool.jsonl is the recipe's input",
        ),
        (
            lambda t: {"process": [{"daar_diversity_score_filter": {"stats_export_path": str(t / "out" / "selected.jsonl")}}]},
            "daar_diversity_score_filter's stats_export_path and export_path are one file",
        ),
        (
            lambda t: {"dataset_path": str(write_jsonl(t / "pool_stats.jsonl", [])), "export_path": str(t / "pool.jsonl")},
            "the export's stats file {t}/pool_stats.jsonl is the recipe's input",
        ),
        (lambda t: {"dataset_path": str(write_jsonl(t / "empty.jsonl", []))}, "{t}/empty.jsonl is empty"),
        # dataset_path as Data-Juicer reads it: several paths, each with an optional weight before it
        (
            lambda t: {
                "dataset_path": f"{t / 'pool.jsonl'} {write_jsonl(t / 'v3.jsonl', theme_rows(1))}",
                "export_path": str(t / "v3.jsonl"),
            },
            "export_path {t}/v3.jsonl is the recipe's input {t}/v3.jsonl",
        ),
        (
            lambda t: {"dataset_path": f"1.0 {write_jsonl(t / 'v6.jsonl', theme_rows(1))}", "export_path": str(t / "v6.jsonl")},
            "export_path {t}/v6.jsonl is the recipe's input {t}/v6.jsonl",
        ),
        # an export onto what the ops read: the bundle, the model
        (
            lambda t: {
                "process": [{"daar_domain_probe_mapper": {"bundle_path": str(t / "b_x")}}],
                "export_path": str(t / "b_x" / "manifest.json"),
            },
            "export_path {t}/b_x/manifest.json is inside daar_domain_probe_mapper's bundle_path {t}/b_x",
        ),
        (
            lambda t: {"process": [{"daar_diversity_score_filter": {"model_path": str(t / "m")}}], "export_path": str(t / "m" / "x.jsonl")},
            "export_path {t}/m/x.jsonl is inside daar_diversity_score_filter's model_path {t}/m",
        ),
        # where Data-Juicer could not write at the end of the run: refused before it
        (lambda t: {"export_path": "~/x.jsonl"}, "export_path ~/x.jsonl starts with ~, which Data-Juicer does not expand"),
        (
            lambda t: {"export_path": str(t / "out" / "selected")},
            "export_path {t}/out/selected has no suffix: the default executor writes one file",
        ),
        (lambda t: {"export_path": str(t) + "/"}, "export_path {t}/ is an existing folder: Data-Juicer writes a file there"),
        # the stats file named as Data-Juicer names it: by the lower-case format, or export_type
        (
            lambda t: {"export_path": str(t / "out" / "sel.JSONL")},
            "export_path {t}/out/sel.JSONL: Data-Juicer names the stats file by replacing '.jsonl' in it, finds none",
        ),
        (
            lambda t: {"export_path": str(t / "out" / "sel"), "export_type": "jsonl"},
            "export_path {t}/out/sel: Data-Juicer names the stats file by replacing '.jsonl' in it, finds none",
        ),
        (
            lambda t: {"export_path": str(t / "pool.json"), "export_type": "jsonl", "dataset_path": str(t / "pool_stats.json")},
            "Data-Juicer names the stats file by replacing '.jsonl'",
        ),
        # the score store in a folder the recipe reads or writes: the ops would add their files there
        (
            lambda t: {"process": [{"daar_domain_probe_mapper": {"bundle_path": str(t / "b"), "score_store_dir": str(t / "b")}}]},
            "daar_domain_probe_mapper's score store {t}/b is daar_domain_probe_mapper's bundle_path {t}/b",
        ),
        (
            lambda t: {
                "dataset_path": str(t / "shards"),
                "process": [{"daar_diversity_score_filter": {"score_store_dir": str(t / "shards" / "s")}}],
            },
            "daar_diversity_score_filter's score store {t}/shards/s is inside the recipe's input {t}/shards",
        ),
        (
            lambda t: {
                "executor_type": "ray",
                "export_path": str(t / "out" / "sel"),
                "process": [{"daar_domain_probe_mapper": {"score_store_dir": str(t / "out" / "sel")}}],
            },
            "daar_domain_probe_mapper's score store {t}/out/sel is export_path {t}/out/sel",
        ),
        (
            lambda t: {"dataset_path": str(t / "data"), "process": [{"daar_domain_probe_mapper": {}}]},
            "daar_domain_probe_mapper's score store {t}/data/store is inside the recipe's input {t}/data",
        ),
        (
            lambda t: {"export_path": str(write_jsonl(t / "f.jsonl", [])) + "/x.jsonl"},
            "export_path {t}/f.jsonl/x.jsonl: {t}/f.jsonl is not a folder this user can write into",
        ),
    ],
)
def test_outputs_over_inputs_or_each_other_and_empty_inputs_are_refused(tmp_path, paths, message, monkeypatch):
    monkeypatch.setenv("DAAR_SCORE_STORE", str(tmp_path / "data" / "store"))  # the default store, inside one folder input
    with pytest.raises(ConfigError) as err:
        check_recipe_paths(cfg(tmp_path, **paths(tmp_path)))
    assert message.format(t=tmp_path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_dj_process_refuses_an_export_over_its_input_before_scoring(tmp_path, tiny_bundle):
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(10))
    before = pool.read_bytes()
    op = {"bundle_path": str(tiny_bundle)}
    config = recipe(tmp_path, pool, [{"daar_domain_probe_mapper": op}, {"daar_topk_reward_selector": {**op, "topk": 8}}])
    config.write_text(config.read_text().replace(str(tmp_path / "out" / "selected.jsonl"), str(pool)))
    result = dj("dj-process", config, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "is the recipe's input" in output and "backbone embedded" not in output
    assert pool.read_bytes() == before  # the 40 rows are still there


def test_a_folder_export_under_ray_has_no_stats_file_and_passes(tmp_path):
    # Data-Juicer's Ray exporter writes a folder of shards and no stats file beside it
    check_recipe_paths(cfg(tmp_path, executor_type="ray", export_path=str(tmp_path / "out" / "selected_ray")))


@pytest.mark.slow
def test_dj_process_refuses_an_export_over_one_of_several_inputs_before_scoring(tmp_path, tiny_bundle):
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(10))
    other = write_jsonl(tmp_path / "v3.jsonl", theme_rows(10))
    before = other.read_bytes()
    op = {"bundle_path": str(tiny_bundle)}
    process = [{"daar_domain_probe_mapper": op}, {"daar_topk_reward_selector": {**op, "topk": 8}}]
    config = recipe(tmp_path, None, process, dataset_path=f"{pool} {other}", export_path=str(other))
    result = dj("dj-process", config, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "is the recipe's input" in output and "backbone embedded" not in output
    assert other.read_bytes() == before


def test_a_read_only_export_folder_is_refused_at_start():
    """As a user who may not write there (root may write anywhere, so as root the check runs without
    the capability that lets it)."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="daar-ro-"))
    try:
        base.chmod(0o755)
        (base / "ro").mkdir(mode=0o555)
        (base / "ro").chmod(0o555)
        code = (
            "from argparse import Namespace\n"
            "from data_juicer_daar.dj.recipe_paths import check_recipe_paths\n"
            "from data_juicer_daar.errors import ConfigError\n"
            f"cfg = Namespace(dataset_path={str(base / 'pool.jsonl')!r}, export_path={str(base / 'ro' / 'sel.jsonl')!r}, process=[])\n"
            "try:\n    check_recipe_paths(cfg)\n"
            "except ConfigError as exc:\n    print(exc)\n"
        )
        write_jsonl(base / "pool.jsonl", theme_rows(1))
        (base / "pool.jsonl").chmod(0o644)
        command = [sys.executable, "-c", code]
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: no user here lacks write access")
            # root without the capability to override file modes: it still reads the checkout, cannot write there
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
        out = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert f"export_path {base}/ro/sel.jsonl: {base}/ro is not a folder this user can write into" in out.stdout, out.stderr[-2000:]
    finally:
        shutil.rmtree(base, ignore_errors=True)
