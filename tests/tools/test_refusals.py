"""What `daar` refuses before any work, in one line, leaving the user's files as they were (run
in-process: every refusal comes before a model loads)."""

import json
import os
import shutil
import stat

import pytest
from helpers import theme_rows, write_jsonl

from data_juicer_daar.tools.cli import main


def daar(capsys, *args: str) -> tuple[int, list[str]]:
    """Exit code and the ``daar: error:`` lines of ``daar ARGS``."""
    rc = main(list(args))
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.startswith("daar: error:")]


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_over_a_folder_of_user_files_holding_the_corpus_is_refused(capsys, tmp_path, tiny_model):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    corpus = write_jsonl(precious / "pool.jsonl", theme_rows(2))
    before = snapshot(precious)
    rc, errors = daar(capsys, "train", "--corpus", str(corpus), "--out", str(precious), "--model", str(tiny_model))
    assert rc == 2 and len(errors) == 1 and "--out:" in errors[0] and "an input of this training" in errors[0]
    assert snapshot(precious) == before


def test_out_over_a_folder_of_other_files_is_refused_naming_them(capsys, tmp_path, tiny_model, theme_corpus):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "manifest.json").write_text('{"name": "my web app"}')  # a manifest, but not a bundle's
    before = snapshot(folder)
    rc, errors = daar(capsys, "train", "--corpus", str(theme_corpus), "--out", str(folder), "--model", str(tiny_model))
    assert rc == 2 and len(errors) == 1 and "is a directory holding manifest.json, notes.txt, not a bundle" in errors[0]
    assert snapshot(folder) == before


def test_out_over_a_file_a_link_or_under_a_file_is_refused(capsys, tmp_path, tiny_model, theme_corpus):
    data = write_jsonl(tmp_path / "afile.jsonl", theme_rows(1))
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for out, message in (
        (data, "is an existing file, not a bundle directory"),
        (link, "is a symbolic link"),
        (data / "probe", "is not a writable directory"),
    ):
        rc, errors = daar(capsys, "train", "--corpus", str(theme_corpus), "--out", str(out), "--model", str(tiny_model))
        assert rc == 2 and len(errors) == 1 and message in errors[0], errors
    assert data.read_bytes() == b"".join(json.dumps(r).encode() + b"\n" for r in theme_rows(1))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing renamed aside


def test_out_may_replace_an_empty_folder_or_a_bundle(tmp_path, tiny_bundle):
    from data_juicer_daar.method.bundle import check_out

    empty = tmp_path / "empty"
    empty.mkdir()
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    assert check_out(empty) == empty and check_out(copy) == copy and check_out(tmp_path / "new" / "deeper")
    (copy / "extra.txt").write_text("a user's file in the bundle folder")
    with pytest.raises(Exception, match="not a bundle"):
        check_out(copy)


def test_bundles_are_as_readable_as_the_umask_allows(tmp_path, tiny_bundle):
    from data_juicer_daar.method.bundle import load_bundle, save_bundle

    bundle = load_bundle(tiny_bundle)
    old = os.umask(0o022)
    try:
        out = save_bundle(tmp_path / "b", bundle.manifest, bundle.probe, bundle.predictor, [], bundle.subdomains)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--hidden", "0", "--hidden: must be a list of widths (integers from 1 to 65536, e.g. 512,256) or null, got [0]"),
        ("--hidden", "1000000000", "--hidden: must be a list of widths (integers from 1 to 65536, e.g. 512,256) or null, got [1000000000]"),
        ("--head-batch-size", "0", "--head-batch-size: must be an integer >= 1, got 0"),
        (
            "--device",
            "tpu",
            "--device: must be cpu, cuda, cuda:N (N below the visible GPUs) or mps (where this torch build has it) or null, got 'tpu'",
        ),
        ("--seed", "18446744073709551616", "--seed: must be an integer >= 0 and <= 4294967295, got 18446744073709551616"),
        ("--seed", "-1", "--seed: must be an integer >= 0 and <= 4294967295, got -1"),
        ("--lr", "1e308", "--lr: must be a finite number > 0 and <= 10, got 1e+308"),
        ("--val-fraction", "2", "--val-fraction: must be a finite number > 0 and < 1, got 2.0"),
        ("--layers", "0", "--layers: must be an integer >= 1, got 0"),
        ("--tau", "0", "--tau: must be a finite number > 0 and <= 1, got 0.0"),
    ],
)
def test_every_bad_setting_is_refused_by_its_flag_before_any_work(capsys, tmp_path, flag, value, message):
    # the corpus does not even exist: the settings are refused first
    rc, errors = daar(capsys, "train", "--corpus", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "b"), flag, value)
    assert rc == 2 and errors == [f"daar: error: {message}"]


def test_flag_prefixes_are_not_accepted(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--corp", "x.jsonl", "--out", str(tmp_path / "b")])
    assert exit_.value.code == 2 and "--corp" in capsys.readouterr().err


def test_check_reads_what_dj_process_reads_and_checks_every_file(capsys, tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + b'{"instruction": "a"}\n{"instruction": "b"}\n')
    array = tmp_path / "array.json"
    array.write_text(json.dumps(theme_rows(1)))
    folder = tmp_path / "shards"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", theme_rows(1))
    write_jsonl(folder / "b.jsonl", theme_rows(1))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"instruction": "ok"}\nnot json\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    rc = main(["check", str(bad), str(bom), str(array), str(folder), str(empty)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "bom.jsonl: 2 rows" in out and f"array.json: {len(theme_rows(1))} rows" in out
    assert "a.jsonl: " in out and "b.jsonl: " in out  # after the bad file: every file is checked
    assert "bad.jsonl:2: not valid JSON" in err and "empty.jsonl holds no rows" in err


def test_check_says_what_dj_process_refuses_or_alters(capsys, tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text('{"instruction": "a", "instruction": "b"}\n{"instruction": "c"}\n')
    wide = tmp_path / "wide.jsonl"
    wide.write_text(f'{{"instruction": "a", "n": {2**97}}}\n{{"instruction": "c", "n": 1}}\n')
    parquet = tmp_path / "pool.parquet"
    pq.write_table(pa.Table.from_pylist(theme_rows(1)), parquet)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    # what Data-Juicer's loader does with them
    with pytest.raises(datasets.exceptions.DatasetGenerationError):
        datasets.load_dataset("json", data_files=str(repeated), split="train", cache_dir=str(tmp_path / "c1"))
    loaded = datasets.load_dataset("json", data_files=str(wide), split="train", cache_dir=str(tmp_path / "c2"))
    assert loaded[1]["n"] == 1.0 and isinstance(loaded[1]["n"], float)  # altered: every row's n is a float now
    rc = main(["check", str(repeated), str(wide), str(parquet), str(broken)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "repeated.jsonl:1: the key 'instruction' appears twice in one object" in err
    assert f"wide.jsonl: row 1 holds the integer {2**97}, beyond 64 bits" in err and "wide.jsonl: 2 rows" in out
    assert f"pool.parquet: {len(theme_rows(1))} rows (Parquet), readable" in out and "not valid UTF-8" not in err
    assert "broken.parquet: not a readable Parquet file" in err


def test_report_into_an_existing_file_is_refused(capsys, tmp_path):
    target = write_jsonl(tmp_path / "keep.jsonl", theme_rows(1))
    before = target.read_bytes()
    rc, errors = daar(capsys, "report", "--pool", str(target), "--selection", str(target), "--out", str(target))
    assert rc == 2 and errors == [f"daar: error: --out: {target} is an existing file: give the report a directory of its own"]
    assert target.read_bytes() == before


def test_process_passes_dj_process_flags_on_and_checks_an_export_override(capsys, tmp_path):
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(1))
    config = tmp_path / "r.yaml"
    config.write_text(f"dataset_path: {pool}\nexport_path: {tmp_path / 'out.jsonl'}\nprocess: []\n")
    rc, errors = daar(capsys, "process", "--config", str(config), "--np", "2", "--export_path", str(pool))
    assert rc == 2 and len(errors) == 1 and "is the recipe's input" in errors[0]
    with pytest.raises(SystemExit):
        main(["check", str(pool), "--np", "2"])  # other commands still refuse unknown flags


@pytest.mark.skipif(__import__("torch").backends.mps.is_available(), reason="this torch has MPS")
def test_a_device_this_torch_lacks_is_refused_before_any_work(capsys, tmp_path):
    rc, errors = daar(capsys, "train", "--corpus", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "b"), "--device", "mps")
    assert rc == 2 and len(errors) == 1 and errors[0].startswith("daar: error: --device: must be cpu, cuda") and "got 'mps'" in errors[0]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--probe-size", "2"], "--probe-size: must be at least K=4 (one row per domain), got 2"),
        (["--folds", "1000"], "--folds: must be at most the 8 rows of the probe set, got 1000"),
    ],
)
def test_settings_that_need_the_corpus_are_refused_before_the_model_loads(capsys, tmp_path, flags, message):
    corpus = write_jsonl(tmp_path / "pool.jsonl", theme_rows(2))
    rc, errors = daar(capsys, "train", "--corpus", str(corpus), "--out", str(tmp_path / "b"), *flags)
    assert rc == 2 and len(errors) == 1 and errors[0].startswith(f"daar: error: {message}")
    assert not (tmp_path / "b").exists()


def test_an_empty_out_is_refused_before_any_work(capsys, tmp_path):
    corpus = write_jsonl(tmp_path / "pool.jsonl", theme_rows(2))
    rc, errors = daar(capsys, "train", "--corpus", str(corpus), "--out", "")
    assert rc == 2 and errors == ["daar: error: --out: must name a bundle directory, got an empty path"]


def test_labelled_pools_are_as_readable_as_the_umask_allows(tmp_path):
    from data_juicer_daar.tools.demo import build_pool

    old = os.umask(0o022)
    try:
        out = build_pool([("evals/sql", "coding", 3)], tmp_path / "pool.jsonl")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 and len(out.read_text().splitlines()) == 3


def test_a_missing_instruct_model_is_refused_even_without_synthesis(capsys, tmp_path):
    corpus = write_jsonl(tmp_path / "pool.jsonl", theme_rows(2))
    rc, errors = daar(capsys, "train", "--corpus", str(corpus), "--out", str(tmp_path / "b"), "--instruct-model", str(tmp_path / "none"))
    assert rc == 2 and errors == [f"daar: error: --instruct-model: {tmp_path / 'none'}: no such model directory"]


def test_train_reads_a_folder_of_shards_as_dj_process_does(capsys, tmp_path, tiny_model):
    from data_juicer_daar.method.bundle import read_manifest

    rows = theme_rows(10)
    (tmp_path / "shards" / "sub").mkdir(parents=True)
    write_jsonl(tmp_path / "shards" / "a.jsonl", rows[:20])
    write_jsonl(tmp_path / "shards" / "sub" / "b.jsonl", rows[20:])
    flags = ["--model", str(tiny_model), "--layers", "2", "--max-length", "64", "--folds", "3", "--max-epochs", "5"]
    rc = main(["train", "--corpus", str(tmp_path / "shards"), "--out", str(tmp_path / "b"), *flags])
    assert rc in (0, None)
    assert read_manifest(tmp_path / "b").metrics["n_pool"] == len(rows)
    (tmp_path / "empty").mkdir()
    rc, errors = daar(capsys, "train", "--corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "c"))
    assert rc == 2 and errors == [f"daar: error: --corpus: {tmp_path / 'empty'} holds no .json or .jsonl file"]


def test_check_reads_compressed_shards_and_says_when_one_is_broken(tmp_path, capsys):
    import gzip

    from data_juicer_daar.tools.cli import main

    folder = tmp_path / "shards"
    folder.mkdir()
    rows = "".join(json.dumps({"instruction": f"q{i}"}) + "\n" for i in range(3)).encode()
    (folder / "a.jsonl.gz").write_bytes(gzip.compress(rows))
    assert main(["check", str(folder)]) == 0
    assert f"{folder}/a.jsonl.gz: 3 rows, every line readable" in capsys.readouterr().out
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(rows)[:20])  # cut short
    assert main(["check", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"daar: error: {folder}/b.jsonl.gz: not a readable gz file" in err and len(err.strip().splitlines()) == 1


def test_report_recipe_refusals_are_one_line(capsys, tmp_path):
    def recipe(name: str, text: str) -> str:
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    out = str(tmp_path / "r")
    no_selector = recipe("a.yaml", "export_path: s.jsonl\nprocess:\n  - daar_domain_probe_mapper: {bundle_path: b}\n")
    no_pool = recipe("b.yaml", "export_path: s.jsonl\nprocess:\n  - daar_topk_reward_selector: {bundle_path: b, top_ratio: 0.2}\n")
    bad_rule = recipe("c.yaml", "export_path: s.jsonl\nprocess:\n  - daar_topk_reward_selector: {top_ratio: 0.2, rate_cap: 0.5}\n")
    cases = {
        ("--out", out): "daar: error: --pool: give --pool and --selection, or --recipe (the recipe that made the selection)",
        ("--recipe", str(tmp_path / "none.yaml"), "--out", out): f"cannot read the recipe {tmp_path / 'none.yaml'}: No such file",
        ("--recipe", recipe("d.yaml", "process: [unclosed\n"), "--out", out): f"the recipe {tmp_path / 'd.yaml'} is not YAML: ",
        ("--recipe", no_selector, "--out", out): f"the recipe {no_selector} has no daar_topk_reward_selector or "
        "daar_topk_reward_ray_selector in its process list: give --pool and --selection instead",
        ("--recipe", no_pool, "--out", out): f"the recipe {no_pool} keeps no scored pool: add stats_export_path to "
        "daar_diversity_score_filter",
        ("--recipe", bad_rule, "--out", out): f"daar: error: --recipe: the recipe {bad_rule}: daar_topk_reward_selector: rate_cap must be",
    }
    for args, said in cases.items():
        rc, errors = daar(capsys, "report", *args)
        assert rc == 2 and len(errors) == 1 and said in errors[0], (args, errors)
    assert not (tmp_path / "r").exists()


def test_the_rule_in_words_names_every_setting():
    from data_juicer_daar.method.selection import TopkSpec

    def rule(*args, **kw) -> str:
        return TopkSpec.build(*args, domains=["a", "b"], **kw).describe()

    assert (
        rule(None, 0.2, "overall", None, coverage=False)
        == "overall: top_ratio 0.2, one budget over the whole pool, highest probe_entropy first"
    )
    assert rule(None, 0.2, "overall", None) == (
        "overall: top_ratio 0.2, one budget over the whole pool, spread over its sub-domains in proportion to their rows, "
        "highest probe_entropy first"
    )
    assert rule(None, 0.2, "balanced", None) == (  # the op's defaults
        "balanced: top_ratio 0.2, a part per domain in proportion to the square root of its rows, "
        "each part spread over its sub-domains in proportion to their rows, highest probe_entropy first"
    )
    assert rule(None, 0.2, "balanced", None, share_exponent=0.0) == (
        "balanced: top_ratio 0.2, an equal part per domain, each part spread over its sub-domains in proportion to their rows, "
        "highest probe_entropy first"
    )
    assert rule(7, 0.2, "balanced", None, coverage=False, share_exponent=0.3, rate_cap=1.5, score_source="predictor") == (
        "balanced: the smaller of topk 7 and top_ratio 0.2, a part per domain in proportion to its rows to the power 0.3, "
        "no domain above 1.5 x the overall rate, highest predictor first"
    )
    assert rule(7, None, "balanced", None, share_exponent=1.0, rate_cap=2, coverage=True).startswith(
        "balanced: topk 7, a part per domain in proportion to its rows, each part spread over its sub-domains in proportion "
        "to their rows, no domain or sub-domain above 2 x the overall rate"
    )
    assert rule(7, None, "custom", {"a": 0.75, "b": 0.25}, coverage=False).startswith(
        "custom: topk 7, the parts in domain_ratios (a 0.75, b 0.25),"
    )
