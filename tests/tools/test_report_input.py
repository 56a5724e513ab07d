"""`daar report`'s reading of a scored pool: rows it cannot use and ids that repeat are refused in
one line naming the row (fast: hand-written scored pools, no dj-process)."""

import math

import pytest
from helpers import write_jsonl

from data_juicer_daar import keys
from data_juicer_daar.errors import CorpusError
from data_juicer_daar.tools.cli import main
from data_juicer_daar.tools.report.load import load_selection


def scored_row(i: int, score=0.5, domain="coding", subdomain=1) -> dict:
    return {
        "id": i,
        "instruction": f"row {i}",
        keys.STATS: {keys.SCORES[keys.DEFAULT_SCORE].stats_key: score},
        keys.META: {keys.DOMAIN: domain, keys.SUBDOMAIN: subdomain},
    }


def test_repeated_ids_are_refused_naming_the_id(capsys, tmp_path):
    pool = write_jsonl(tmp_path / "pool.jsonl", [scored_row(1, 0.0), scored_row(2, 0.9), {**scored_row(3, 0.9), "id": 1}])
    selection = write_jsonl(tmp_path / "sel.jsonl", [scored_row(2, 0.9)])
    rc = main(["report", "--pool", str(pool), "--selection", str(selection), "--out", str(tmp_path / "r"), "--id-key", "id"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("daar: error:")]
    assert rc == 2 and len(errors) == 1 and errors[0].startswith("daar: error: --id-key: 'id' is not unique")
    assert "rows 1 and 3 both have 1" in errors[0] and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "bad, message",
    [
        (scored_row(2, math.nan), "row 2 has daar_probe_entropy nan, not a finite number"),
        (scored_row(2, math.inf), "row 2 has daar_probe_entropy inf, not a finite number"),
        (scored_row(2, "0.5"), "row 2 has daar_probe_entropy '0.5', not a number"),
        (scored_row(2, True), "row 2 has daar_probe_entropy True, not a number"),
        (scored_row(2, domain=["coding"]), "row 2 has daar_domain ['coding'], not a domain name"),
        (scored_row(2, subdomain="3"), "row 2 has daar_subdomain '3', not a sub-domain number"),
        ({**scored_row(2), keys.META: [1]}, "row 2 has __dj__meta__ [1], not a mapping"),
    ],
)
def test_a_row_the_report_cannot_use_is_one_line_naming_it(tmp_path, bad, message):
    pool = write_jsonl(tmp_path / "pool.jsonl", [scored_row(1), bad, scored_row(3)])
    selection = write_jsonl(tmp_path / "sel.jsonl", [scored_row(1)])
    with pytest.raises(CorpusError) as err:
        load_selection(pool, selection, "id")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_good_pool_marks_the_selected_rows_by_id(tmp_path):
    pool = write_jsonl(tmp_path / "pool.jsonl", [scored_row(1, 0.1), scored_row(2, 0.9), scored_row(3, 0.2)])
    selection = write_jsonl(tmp_path / "sel.jsonl", [scored_row(2, 0.9)])
    loaded = load_selection(pool, selection, "id")
    assert loaded.picked.tolist() == [False, True, False] and float(loaded.scores[loaded.picked].mean()) == 0.9
