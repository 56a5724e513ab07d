"""Counting the rows Data-Juicer's formatter drops, for every input the recipes may name, and the
saved-dataset source's bad input (fast: no dj-process)."""

import json
from argparse import Namespace

import pytest
from helpers import write_jsonl

from data_juicer_daar.dj.dropped_rows import count_dropped

ROWS = [{"instruction": "a"}, {"instruction": None}, {"text": "no instruction"}, {"instruction": "b", "text": None}]


def test_count_dropped_in_json_lines_and_a_json_array(tmp_path):
    assert count_dropped(write_jsonl(tmp_path / "pool.jsonl", ROWS), ["instruction"]) == (2, 4)
    (tmp_path / "array.json").write_text(json.dumps(ROWS))
    assert count_dropped(tmp_path / "array.json", ["instruction"]) == (2, 4)
    assert count_dropped(tmp_path / "array.json", ["instruction", "text"]) == (4, 4)  # any null key drops the row
    (tmp_path / "odd.jsonl").write_text('\n{"instruction": "x"}\nnot json\n[1, 2]\n')
    assert count_dropped(tmp_path / "odd.jsonl", ["instruction"]) == (1, 2)  # unreadable lines are Data-Juicer's to report


def test_json_nan_and_infinity_count_as_missing_as_data_juicer_reads_them(tmp_path):
    import datasets

    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"instruction": NaN}\n{"instruction": Infinity}\n{"instruction": -Infinity}\n{"instruction": "ok"}\n')
    loaded = datasets.load_dataset("json", data_files=str(pool), split="train")  # the loader Data-Juicer reads JSONL with
    assert [r["instruction"] for r in loaded] == [None, None, None, "ok"]
    assert count_dropped(pool, ["instruction"]) == (3, 4)


def test_count_dropped_in_parquet_a_folder_and_a_saved_dataset(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{k: r.get(k) for k in ("instruction", "text")} for r in ROWS]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pool.parquet")
    assert count_dropped(tmp_path / "pool.parquet", ["instruction"]) == (2, 4)
    folder = tmp_path / "folder"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), folder / "a.parquet")
    write_jsonl(folder / "b.jsonl", ROWS)
    (folder / "notes.txt").write_text("not data")
    assert count_dropped(folder, ["instruction"]) == (4, 8)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    assert count_dropped(tmp_path / "saved", ["instruction"]) == (2, 4)
    assert count_dropped(tmp_path / "saved", ["absent_field"]) == (0, 4)  # Data-Juicer itself refuses a missing key
    assert count_dropped(tmp_path / "notes.csv", ["instruction"]) is None  # not an input this counts


def test_saved_dataset_with_several_splits_needs_a_split(tmp_path):
    import datasets
    from data_juicer.core.data.load_strategy import DataLoadStrategyRegistry

    import data_juicer_daar  # noqa: F401  (registers the source)

    splits = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list([{"text": "a"}]), "test": datasets.Dataset.from_list([{"text": "b"}])}
    )
    splits.save_to_disk(str(tmp_path / "saved"))
    strategy = DataLoadStrategyRegistry.get_strategy_class("default", "local", "huggingface_disk")
    cfg = Namespace(text_keys="text")
    with pytest.raises(ValueError, match=r"holds splits \['train', 'test'\]: set `split`"):
        strategy({"type": "local", "source": "huggingface_disk", "path": str(tmp_path / "saved")}, cfg).load_data()
    loaded = strategy({"type": "local", "source": "huggingface_disk", "path": str(tmp_path / "saved"), "split": "test"}, cfg).load_data()
    assert loaded["text"] == ["b"]


def test_folder_of_one_format_passes_and_a_mixed_one_is_refused(tmp_path):
    from data_juicer_daar.dj.dropped_rows import check_one_format
    from data_juicer_daar.errors import ConfigError

    folder = tmp_path / "shards"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", ROWS)
    (folder / "b.json").write_text(json.dumps(ROWS))
    (folder / "README.md").write_text("not data")
    check_one_format(folder)  # .json and .jsonl are one format; other files are not data
    check_one_format(folder / "a.jsonl")
    (folder / "sub").mkdir()
    (folder / "sub" / "c.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"holds 2 JSON file\(s\) and 1 Parquet file\(s\): Data-Juicer reads one format per folder"):
        check_one_format(folder)


@pytest.mark.parametrize(
    "spelling, expected",
    [
        ("{a} {b}", ["{a}", "{b}"]),
        ("1.0 {a} 0.5 {b}", ["{a}", "{b}"]),
        ("{a}", ["{a}"]),
        ("'{a}'", ["{a}"]),
    ],
)
def test_every_path_of_a_multi_file_dataset_path_is_an_input(tmp_path, spelling, expected):
    from data_juicer_daar.dj.dropped_rows import local_inputs

    a, b = write_jsonl(tmp_path / "a.jsonl", ROWS), write_jsonl(tmp_path / "b.jsonl", ROWS)
    cfg = Namespace(dataset_path=spelling.format(a=a, b=b))
    assert local_inputs(cfg) == [e.format(a=a, b=b) for e in expected]


def compressed_shards(folder):
    """A folder of one plain, one gzip and one zstd JSONL shard, as Data-Juicer reads them all."""
    import gzip

    import zstandard

    folder.mkdir()
    lines = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    write_jsonl(folder / "a.jsonl", ROWS)
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(lines))
    (folder / "C.JSONL.ZST").write_bytes(zstandard.ZstdCompressor().compress(lines))  # Data-Juicer lower-cases suffixes
    return folder


def test_compressed_shards_are_counted_as_data_juicer_reads_them(tmp_path):
    from data_juicer_daar.dj.dropped_rows import check_one_format
    from data_juicer_daar.errors import ConfigError

    folder = compressed_shards(tmp_path / "shards")
    assert count_dropped(folder, ["instruction"]) == (6, 12)
    assert count_dropped(folder / "b.jsonl.gz", ["instruction"]) == (2, 4)
    check_one_format(folder)  # plain and compressed JSON are one format
    (folder / "d.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"holds 3 JSON file\(s\) and 1 Parquet file\(s\)"):
        check_one_format(folder)
