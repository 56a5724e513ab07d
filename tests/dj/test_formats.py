"""Every common SFT form, recognised per row, through Data-Juicer's JSONL, Parquet and saved-dataset
loaders in real `dj-process` runs; rows Data-Juicer drops before any op are counted in one warning."""

import re

import pytest
from data_juicer.utils.constant import Fields
from helpers import dj, read_rows, recipe, theme_rows, write_jsonl

from data_juicer_daar import keys
from data_juicer_daar.method.scoring import Scorer
from data_juicer_daar.method.text import render

pytestmark = pytest.mark.slow


def as_form(row: dict, form: str) -> dict:
    """The same sample in one of the four forms (each row keeps its id)."""
    question, answer = row["instruction"], row["output"]
    if form == "alpaca":
        return {"id": row["id"], "instruction": question, "input": "", "output": answer}
    if form == "messages":
        return {"id": row["id"], "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
    if form == "sharegpt":
        return {
            "id": row["id"],
            "conversations": [
                {"from": "system", "value": "Answer briefly."},
                {"from": "human", "value": question},
                {"from": "gpt", "value": answer},
            ],
        }
    return {"id": row["id"], "text": f"{question}\n{answer}"}


def scoring_recipe(tmp_path, pool, bundle, op_extra=None, **extra):
    op_extra = op_extra or {}
    return recipe(
        tmp_path,
        pool,
        [
            {"daar_domain_probe_mapper": {"bundle_path": str(bundle), **op_extra}},
            {
                "daar_diversity_score_filter": {
                    "bundle_path": str(bundle),
                    "stats_export_path": str(tmp_path / "out" / "scored.jsonl"),
                    **op_extra,
                }
            },
        ],
        **extra,
    )


def assert_scored_like_the_scorer(tmp_path, rows, bundle):
    """Every row came through, in order, with the scores of its own rendered text."""
    scored = read_rows(tmp_path / "out" / "scored.jsonl")
    assert [r["id"] for r in scored] == [r["id"] for r in rows]
    expected = Scorer(bundle).score([render(r).text for r in rows])
    for row, reward, entropy, domain in zip(scored, expected.predictor, expected.probe_entropy, expected.domains):
        assert row[Fields.stats][keys.DIVERSITY] == pytest.approx(float(reward), abs=1e-5)
        assert row[Fields.stats][keys.PROBE_ENTROPY] == pytest.approx(float(entropy), abs=1e-5)
        assert row[Fields.meta][keys.DOMAIN] == domain


def test_a_pool_mixing_all_four_forms(tiny_bundle, tmp_path):
    forms = ["alpaca", "messages", "sharegpt", "text"]
    rows = [as_form(r, forms[i % 4]) for i, r in enumerate(theme_rows(4))]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    # every row has an id, and no text field is shared by all forms: Data-Juicer gets text_keys: id,
    # and the DaaR ops their own plain-text field back
    config = scoring_recipe(tmp_path, pool, tiny_bundle, {"text_key": "text"}, text_keys="id")
    result = dj("dj-process", config, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_scored_like_the_scorer(tmp_path, rows, tiny_bundle)
    assert "dropped by Data-Juicer" not in result.stderr + result.stdout


def test_parquet_input(tiny_bundle, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [as_form(r, "alpaca") for r in theme_rows(3)]
    pool = tmp_path / "pool.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pool)
    result = dj("dj-process", scoring_recipe(tmp_path, pool, tiny_bundle), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_scored_like_the_scorer(tmp_path, rows, tiny_bundle)


@pytest.mark.parametrize("as_dict", [False, True])
def test_saved_hugging_face_dataset_input(tiny_bundle, tmp_path, as_dict):
    import datasets

    rows = [as_form(r, "sharegpt") for r in theme_rows(3)]
    saved = datasets.Dataset.from_list(rows)
    (datasets.DatasetDict({"train": saved}) if as_dict else saved).save_to_disk(str(tmp_path / "saved"))
    source = {"configs": [{"type": "local", "source": "huggingface_disk", "path": str(tmp_path / "saved")}]}
    config = scoring_recipe(tmp_path, None, tiny_bundle, text_keys="conversations", dataset=source)
    result = dj("dj-process", config, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_scored_like_the_scorer(tmp_path, rows, tiny_bundle)


def test_rows_without_the_text_keys_field_are_counted_in_one_warning(tiny_bundle, tmp_path):
    rows = theme_rows(3)[:10] + [{"id": "null-instruction", "instruction": None, "output": "x"}, {"id": "no-instruction", "text": "plain"}]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    result = dj("dj-process", scoring_recipe(tmp_path, pool, tiny_bundle), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(read_rows(tmp_path / "out" / "scored.jsonl")) == 10  # Data-Juicer's formatter dropped two
    warnings = [line for line in (result.stderr + result.stdout).splitlines() if "dropped by Data-Juicer's formatter" in line]
    assert len(warnings) == 1 and re.search(r"2 of 12 rows of \S+pool.jsonl have no instruction", warnings[0])


def test_gzip_and_zstd_shards_in_a_folder_are_read_scored_and_their_dropped_rows_counted(tiny_bundle, tmp_path):
    import gzip
    import json

    import zstandard

    folder = tmp_path / "shards"
    folder.mkdir()
    rows = theme_rows(3)[:9] + [{"id": "no-instruction", "text": "plain"}]
    lines = ["".join(json.dumps(r) + "\n" for r in rows[i::3]).encode() for i in range(3)]
    (folder / "a.jsonl").write_bytes(lines[0])
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(lines[1]))
    (folder / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines[2]))
    result = dj("dj-process", scoring_recipe(tmp_path, folder, tiny_bundle), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    scored = read_rows(tmp_path / "out" / "scored.jsonl")
    assert sorted(r["id"] for r in scored) == sorted(r["id"] for r in rows[:9])  # every shard read, every row scored
    warnings = [line for line in (result.stderr + result.stdout).splitlines() if "dropped by Data-Juicer's formatter" in line]
    assert len(warnings) == 1 and re.search(r"1 of 10 rows of \S+shards have no instruction", warnings[0])
