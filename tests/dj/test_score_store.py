"""The score store: a repeated, resumed or concurrent run scores only what no run kept, and never reads a wrong score."""

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from data_juicer.utils.constant import Fields
from helpers import dj, embedded, gone, read_rows, recipe, run_ops, run_until_killed, running_with, theme_rows, write_jsonl
from loguru import logger

from data_juicer_daar import keys
from data_juicer_daar.dj import op_base
from data_juicer_daar.dj.score_store import ScoreStore, Stored, summarize, text_keys
from data_juicer_daar.errors import ConfigError
from data_juicer_daar.method.backbone import Backbone
from data_juicer_daar.ops import DaarDiversityScoreFilter, DaarDomainProbeMapper

BIN = Path(sys.executable).parent
ONE = {"num_proc": None, "auto_op_parallelism": False}  # in this process: Backbone.texts_embedded counts every row


def scored(bundle, rows, **settings) -> tuple[list, list, int]:
    """(meta, stats, rows embedded) of the mapper and filter over ``rows``."""
    before = Backbone.texts_embedded
    out = run_ops(
        [
            DaarDomainProbeMapper(bundle_path=str(bundle), **ONE, **settings),
            DaarDiversityScoreFilter(bundle_path=str(bundle), **ONE, **settings),
        ],
        rows,
    )
    return out[Fields.meta], out[Fields.stats], Backbone.texts_embedded - before


def assert_same_scores(meta, other) -> None:
    """Equal domains and sub-domains, and probabilities equal up to the float noise of another batch make-up."""
    for name in (keys.DOMAIN, keys.SUBDOMAIN, keys.SCORING_TAG):
        assert [m[name] for m in meta] == [m[name] for m in other]
    np.testing.assert_allclose([m[keys.DOMAIN_PROBS] for m in meta], [m[keys.DOMAIN_PROBS] for m in other], rtol=0, atol=1e-5)


def said(level: str = "INFO"):
    lines: list[str] = []
    return lines, logger.add(lambda m: lines.append(m.record["message"]), level=level)


def test_a_repeated_run_takes_every_score_from_the_store_and_gets_the_same_values(tiny_bundle, tmp_path):
    rows = theme_rows(40)[:40]
    meta, stats, embedded = scored(tiny_bundle, rows)
    assert embedded == len(rows)
    lines, sink = said()
    try:
        meta2, stats2, embedded2 = scored(tiny_bundle, rows)
    finally:
        logger.remove(sink)
    assert embedded2 == 0  # neither op ran the backbone
    assert (meta2, stats2) == (meta, stats)  # float32 kept as scored: equal, not close
    assert any(f"{len(rows)} rows: {len(rows)} already scored" in line for line in lines), lines
    # with the store off, the same values are scored afresh and nothing is written
    off = tmp_path / "off"
    meta3, stats3, embedded3 = scored(tiny_bundle, rows, score_store=False, score_store_dir=str(off))
    assert embedded3 == len(rows) and (meta3, stats3) == (meta, stats) and not off.exists()


def test_new_rows_are_scored_and_stored_ones_are_not(tiny_bundle):
    rows = theme_rows(60)[:60]
    scored(tiny_bundle, rows[:25])
    lines, sink = said()
    try:
        meta, _, embedded = scored(tiny_bundle, rows)
    finally:
        logger.remove(sink)
    assert embedded == 35
    assert any(
        "60 rows: 25 already scored (0 by an earlier op, 25 in the score store" in line and "35 to score" in line for line in lines
    ), lines
    # rows scored in another batch make-up may differ in the last bits of float32, never more
    assert_same_scores(meta, scored(tiny_bundle, rows, score_store=False)[0])


def test_a_store_of_another_bundle_or_number_format_is_never_read(tiny_bundle, tiny_model, theme_corpus, tmp_path):
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.training import DaarTrainer, HeadConfig, TrainConfig

    other = tmp_path / "other"
    config = TrainConfig(model=str(tiny_model), num_layers=2, max_length=64, heads=HeadConfig(max_epochs=20), folds=3, seed=5)
    DaarTrainer(config).fit(read_jsonl(theme_corpus)).save(other)
    rows = theme_rows(20)[:20]
    scored(tiny_bundle, rows)
    meta_b, stats_b, embedded = scored(other, rows)
    assert embedded == len(rows)
    assert_same_scores(meta_b, scored(other, rows, score_store=False)[0])
    dtype = DaarDomainProbeMapper(bundle_path=str(tiny_bundle)).dtype
    assert scored(tiny_bundle, rows, model_dtype="bfloat16" if dtype == "float32" else "float32")[2] == len(rows)
    tags = summarize(os.environ["DAAR_SCORE_STORE"])
    assert len(tags) == 3 and all(t.rows == len(rows) for t in tags)
    assert {t.info["bundle"] for t in tags} == {str(tiny_bundle.resolve()), str(other.resolve())}


def test_a_corrupt_or_half_written_chunk_is_scored_again_never_read(tiny_bundle):
    rows = theme_rows(30)[:30]
    op = {"batch_size": 10}
    meta, _, _ = scored(tiny_bundle, rows, **op)
    (folder,) = [p for p in Path(os.environ["DAAR_SCORE_STORE"]).iterdir()]
    chunks = sorted(folder.glob("chunk-*.npz"))
    assert len(chunks) == 3
    data = chunks[0].read_bytes()
    chunks[0].write_bytes(data[: len(data) // 2])  # truncated
    chunks[1].write_bytes(b"not a chunk")
    (folder / f".tmp-0-{chunks[2].name}").write_bytes(data[:100])  # a write a kill interrupted: never read
    op_base._stores.clear()  # as in a new run's process: this one read the chunks while they were whole
    lines, sink = said("WARNING")
    try:
        meta2, _, embedded = scored(tiny_bundle, rows, **op)
    finally:
        logger.remove(sink)
    assert embedded == 20
    assert_same_scores(meta2, meta)
    assert any("2 chunk file(s) could not be read whole" in line for line in lines), lines


def test_a_chunk_whose_arrays_disagree_is_not_read(tmp_path):
    store = ScoreStore(tmp_path, "t", 2).open({})
    keys_ = text_keys(["a", "b"])
    good = Stored(np.array([0, 1]), np.array([3, 4]), np.full((2, 2), 0.5, np.float32), np.ones(2, np.float32), np.ones(2, np.float32))
    store.add(keys_, good)
    wide = ScoreStore(tmp_path, "t", 3)  # a reader expecting three domains
    assert wide.refresh() == 0 and wide.skipped == 1
    assert store.refresh() == 2
    found, values = store.lookup(text_keys(["b", "c", "a"]))
    assert found.tolist() == [0, 2] and values.subdomain.tolist() == [4, 3]


def test_unfinished_files_a_kill_left_are_removed_when_a_store_opens(tmp_path):
    store = ScoreStore(tmp_path, "t", 2).open({})
    old = [store.dir / ".tmp-0123-chunk-1-h-1-ab-3.npz", store.dir / ".probe-4567"]
    young = store.dir / ".tmp-89ab-chunk-2-h-2-cd-3.npz"  # another process writing it right now
    for path in [*old, young]:
        path.write_bytes(b"PK\x03")
    for path in old:
        os.utime(path, (0, 0))
    ScoreStore(tmp_path, "t", 2).open({})
    assert [p.exists() for p in old] == [False, False] and young.exists()
    assert ScoreStore(tmp_path, "t", 2).refresh() == 0  # and neither was ever read as a chunk


def test_two_writers_over_one_store_both_keep_their_rows(tmp_path):
    def write(offset: int) -> None:
        store = ScoreStore(tmp_path, "t", 1).open({})
        for start in range(offset, offset + 200, 20):
            n = 20
            texts = [f"row {i}" for i in range(start, start + n)]
            ids = np.arange(start, start + n)
            store.add(text_keys(texts), Stored(ids % 7, ids, np.ones((n, 1), np.float32), ids.astype(np.float32), np.zeros(n, np.float32)))

    threads = [threading.Thread(target=write, args=(o,)) for o in (0, 100)]  # overlapping rows: equal keys, equal scores
    [t.start() for t in threads]
    [t.join() for t in threads]
    store = ScoreStore(tmp_path, "t", 1)
    assert store.refresh() == 300
    found, values = store.lookup(text_keys([f"row {i}" for i in range(300)]))
    assert found.tolist() == list(range(300)) and values.predictor.tolist() == list(range(300))


def test_a_store_that_cannot_be_written_is_one_line(tiny_bundle, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for where in (blocker / "store", Path("/sys/daar_store")):  # under a file; on a read-only file system
        op = DaarDomainProbeMapper(bundle_path=str(tiny_bundle), score_store_dir=str(where), **ONE)
        with pytest.raises(ConfigError) as err:
            run_ops([op], theme_rows(3))
        message = str(err.value)
        assert "\n" not in message and f"score store {where} cannot be written" in message and "score_store: false" in message


def test_the_start_line_counts_rows_an_earlier_op_scored(tiny_bundle):
    rows = theme_rows(12)[:12]
    lines, sink = said()
    try:
        scored(tiny_bundle, rows, score_store=False)
    finally:
        logger.remove(sink)
    starts = [line for line in lines if " rows: " in line and "to score" in line]
    assert starts == [
        "daar_domain_probe_mapper: 12 rows: 0 already scored by an earlier op (score store off), 12 to score",
        "daar_diversity_score_filter: 12 rows: 12 already scored by an earlier op (score store off), 0 to score",
    ]


# -- kills and reruns through dj-process and daar process ------------------------------------------
CHUNK = 5  # rows per batch: the most a kill may lose per worker


def kill_recipe(tmp_path, bundle, rows: int = 3000) -> Path:
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(rows // 4)[:rows])
    op = {"bundle_path": str(bundle), "batch_size": CHUNK, "model_dtype": "float32"}
    process = [
        {"daar_domain_probe_mapper": op},
        {"daar_diversity_score_filter": op},
        {"daar_topk_reward_selector": {**op, "top_ratio": 0.1, "mode": "balanced", "coverage": True}},
    ]
    return recipe(tmp_path, pool, process, np=2)


def command(tool: str, config: Path) -> list[str]:
    return [str(BIN / "daar"), "process", "--config", str(config)] if tool == "daar" else [str(BIN / "dj-process"), "--config", str(config)]


def start_line(log: str, op: str = "daar_domain_probe_mapper") -> tuple[int, int, int]:
    """(rows, in the store, to score) from the op's start line."""
    found = re.search(
        rf"{op}: ([\d,]+) rows: [\d,]+ already scored \(0 by an earlier op, ([\d,]+) in the score store [^)]*\), ([\d,]+) to score", log
    )
    assert found, log[-3000:]
    return tuple(int(g.replace(",", "")) for g in found.groups())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_bundle) -> list[str]:
    """The ids the kill recipe selects when nothing stops it (a fresh store)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    config = kill_recipe(tmp, tiny_bundle)
    fresh = dj("dj-process", config, tmp, env={**os.environ, "HF_HUB_OFFLINE": "1", "DAAR_SCORE_STORE": str(tmp / "store")})
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    return [r["id"] for r in read_rows(tmp / "out" / "selected.jsonl")]


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["dj-process", "daar"])
def test_a_killed_run_resumes_rescoring_at_most_a_chunk_per_worker_and_selects_the_same_rows(tmp_path, tiny_bundle, uninterrupted, tool):
    config = kill_recipe(tmp_path, tiny_bundle)
    store = tmp_path / "store"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DAAR_SCORE_STORE": str(store), "DAAR_PROGRESS_SECONDS": "0.3"}
    first = run_until_killed(command(tool, config), tmp_path, env, lines=2)
    assert "ETA" in first and "rows/s" in first
    assert gone(str(config)), f"left running: {running_with(str(config))}"  # dj-process and both workers
    done = embedded(first)
    assert 0 < done < 3000

    again = subprocess.run(command(tool, config), cwd=tmp_path, env=env, capture_output=True, text=True, errors="replace", timeout=600)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    rows, stored, to_score = start_line(log)
    assert rows == 3000 and stored + to_score == 3000
    # the later ops count the rows the mapper scored from Data-Juicer's JSON meta column, in one pass
    assert "daar_diversity_score_filter: 3,000 rows: 3,000 already scored (3,000 by an earlier op, 0 in the score store" in log
    assert embedded(log) == to_score  # only the missing rows ran through the backbone
    assert done - stored <= 2 * CHUNK  # rescored: at most the chunk in flight per worker
    assert summarize(store)[0].rows >= 3000

    ids = [r["id"] for r in read_rows(tmp_path / "out" / "selected.jsonl")]
    assert ids == uninterrupted and len(ids) == 300


@pytest.mark.slow
def test_two_runs_at_once_over_one_store_both_select_correctly(tmp_path, tiny_bundle):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DAAR_SCORE_STORE": str(tmp_path / "store")}
    configs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        configs.append(kill_recipe(tmp_path / name, tiny_bundle, rows=1200))
    runs = [
        subprocess.Popen(
            command("dj-process", c), cwd=c.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        for c in configs
    ]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[-2000:] for o in outputs]
    a, b = (read_rows(c.parent / "out" / "selected.jsonl") for c in configs)
    assert a == b and len(a) == 120
    fresh = dj("dj-process", configs[0], configs[0].parent, env={**env, "DAAR_SCORE_STORE": str(tmp_path / "fresh")})
    assert fresh.returncode == 0 and read_rows(configs[0].parent / "out" / "selected.jsonl") == a


def test_daar_store_lists_and_prunes_only_what_the_ops_wrote(tiny_bundle, tiny_model, theme_corpus, tmp_path, capsys):
    import shutil

    from data_juicer_daar.tools.cli import main

    other = tmp_path / "other"
    shutil.copytree(tiny_bundle, other)
    rows = theme_rows(8)[:8]
    scored(tiny_bundle, rows)
    scored(other, rows[:5], model_dtype="bfloat16")
    root = Path(os.environ["DAAR_SCORE_STORE"])
    mine = root / "notes"
    mine.mkdir()
    (mine / "info.json").write_text('{"bundle": "x", "dtype": "x", "text": {}}')  # a user's folder: never listed or removed

    assert main(["store"]) == 0
    listed = capsys.readouterr().out
    assert f"score store {root}: 2 tag(s), 13 rows" in listed and "notes" not in listed and "stale" not in listed

    assert main(["store", "--prune"]) == 2
    assert "daar: error: --prune: --prune needs what to remove" in capsys.readouterr().err
    assert main(["store", "--all"]) == 2 and "add --prune" in capsys.readouterr().err
    assert main(["store", "--prune", "--older-than", "nan"]) == 2 and "a number of days" in capsys.readouterr().err

    shutil.rmtree(other)  # its scores can never be read again
    assert main(["store"]) == 0 and "[stale: its bundle is gone]" in capsys.readouterr().out
    assert main(["store", "--prune", "--stale"]) == 0 and "removed 1 tag(s), 5 rows" in capsys.readouterr().out
    assert main(["store", "--prune", "--older-than", "1"]) == 0 and "removed 0 tag(s)" in capsys.readouterr().out
    assert main(["store", "--prune", "--bundle", str(tiny_bundle)]) == 0 and "removed 1 tag(s), 8 rows" in capsys.readouterr().out
    assert main(["store", "--prune", "--all"]) == 0 and "removed 0 tag(s)" in capsys.readouterr().out
    assert sorted(p.name for p in root.iterdir()) == ["notes"]


def test_a_ray_worker_that_does_not_see_the_drivers_store_says_so(tmp_path):
    lines, sink = said("WARNING")
    try:
        ScoreStore(tmp_path, "t", 2).open({}, job="01000000")  # no driver mark: the driver wrote elsewhere
        seen = ScoreStore(tmp_path, "u", 2)
        seen.open({})
        seen.mark_driver("02000000")
        seen.open({}, job="02000000")
    finally:
        logger.remove(sink)
    assert len(lines) == 1 and "this Ray node does not see the folder the driver wrote to" in lines[0]
    assert "set score_store_dir to a folder every node mounts" in lines[0]


@pytest.mark.parametrize("value, expected", [("0.5", 0.5), ("abc", 30.0), ("-4", 0.1), ("", 30.0), ("nan", 30.0), ("inf", 30.0)])
def test_the_progress_cadence_takes_any_environment_value(monkeypatch, value, expected):
    from data_juicer_daar.dj.progress import cadence

    monkeypatch.setenv("DAAR_PROGRESS_SECONDS", value)
    assert cadence() == expected


def test_progress_lines_give_the_eta_of_the_rows_left(tmp_path):
    import time

    from data_juicer_daar.dj.progress import Watch, note

    path = tmp_path / "progress.jsonl"
    note(path, 100, 100, 0)  # a batch an earlier op had scored
    note(path, 100, 0, 100)
    scoring = Watch("op", path, total=1000, to_score=800)
    scoring.t0 = time.monotonic() - 10  # 100 rows scored in 10 s: 700 left to score take 70 s
    assert scoring.line() == "op: 200 of 1,000 rows (100 already scored, 100 scored), 10.0 rows/s, ETA 70 s"
    assert scoring.line() is None  # nothing new since
    passing = tmp_path / "passing.jsonl"
    note(passing, 250, 250, 0)  # under Ray the rows to score are unknown: the pace of rows passing sets the ETA
    reusing = Watch("op", passing, total=1000, to_score=None)
    reusing.t0 = time.monotonic() - 10
    assert reusing.line() == "op: 250 of 1,000 rows (250 already scored, 0 scored), 0.0 rows/s, ETA 30 s"


def test_the_start_lines_count_from_arrow_agrees_with_the_reuse_rule_row_by_row(tiny_bundle):
    from data_juicer_daar.dj.reuse import VALUE_NAMES, carried_mask, stored_values

    rows = theme_rows(4)[:16]
    mapped = run_ops([DaarDomainProbeMapper(bundle_path=str(tiny_bundle), **ONE)], rows[:6])  # meta only
    filtered = run_ops([DaarDiversityScoreFilter(bundle_path=str(tiny_bundle), **ONE)], rows[6:12])  # stats only
    other = DaarDomainProbeMapper(bundle_path=str(tiny_bundle), text_format="text", **ONE)  # another tag
    tagged_other = run_ops([other], rows[12:])
    pool = [{**r, Fields.meta: m} for r, m in zip(rows[:6], mapped[Fields.meta])]
    pool += [{**r, Fields.stats: s} for r, s in zip(rows[6:12], filtered[Fields.stats])]
    pool += [{**r, Fields.meta: m} for r, m in zip(rows[12:], tagged_other[Fields.meta])]
    from datasets import Dataset, Features, Json, Value
    from helpers import dataset

    as_structs = dataset(pool)
    # Data-Juicer keeps stats and meta as its Json feature (JSON text in Arrow): read the same way
    names = [c for c in as_structs.column_names if c not in (Fields.stats, Fields.meta)]
    features = Features({**{c: Value("string") for c in names}, Fields.stats: Json(), Fields.meta: Json()})
    as_json = Dataset.from_list(
        [{**{c: r.get(c) for c in names}, Fields.stats: r.get(Fields.stats), Fields.meta: r.get(Fields.meta)} for r in pool],
        features=features,
    )
    tag = other.tag
    mine = DaarDomainProbeMapper(bundle_path=str(tiny_bundle), **ONE).tag
    for ds in (as_structs, as_json):
        for wanted in (("probe_entropy",), ("predictor", "domain"), ("probe_entropy", "domain", "subdomain"), VALUE_NAMES):
            for t in (mine, tag):
                mask = carried_mask(ds.with_format("arrow")[:], t, wanted)
                rowwise = [stored_values(r.get(Fields.stats), r.get(Fields.meta), t, wanted) is not None for r in ds.to_list()]
                assert mask is not None and mask.tolist() == rowwise, (wanted, t)
                assert any(rowwise) and not all(rowwise)
