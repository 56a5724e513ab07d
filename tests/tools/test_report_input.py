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
        ({**scored_row(2), keys.META: {keys.DOMAIN: "coding", keys.ISSUE: ["no_text"]}}, "row 2 has daar_issue ['no_text'], not a text"),
        ({**scored_row(2), keys.META: {keys.DOMAIN: "coding", keys.ISSUE: {"a": 1}}}, "row 2 has daar_issue {'a': 1}, not a text"),
        ({**scored_row(2), keys.META: {keys.DOMAIN: "coding", keys.DOMAIN_PROBS: "0.5"}}, "row 2 has daar_domain_probs '0.5', not a list"),
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


def test_a_selection_exported_as_a_folder_of_shards_is_read_whole(tmp_path):
    rows = [scored_row(i, 0.1 * i) for i in range(6)]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    (tmp_path / "selected" / "sub").mkdir(parents=True)
    write_jsonl(tmp_path / "selected" / "part-0.jsonl", rows[4:5])  # as the Ray executor writes an export
    write_jsonl(tmp_path / "selected" / "sub" / "part-1.json", rows[5:6])
    (tmp_path / "selected" / "_SUCCESS").write_text("")  # not a data file: not read
    loaded = load_selection(pool, tmp_path / "selected", "id")
    assert loaded.picked.tolist() == [False] * 4 + [True, True]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="is empty"):
        load_selection(tmp_path / "empty", tmp_path / "selected", "id")


def report(tmp_path, rows, picked) -> tuple[int, str]:
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    selection = write_jsonl(tmp_path / "sel.jsonl", [rows[i] for i in picked])
    rc = main(["report", "--pool", str(pool), "--selection", str(selection), "--out", str(tmp_path / "r"), "--id-key", "id"])
    return rc, (tmp_path / "r" / "report.txt").read_text() if rc == 0 else ""


def with_probs(row: dict, k: int = 4) -> dict:
    row[keys.META][keys.DOMAIN_PROBS] = [1 / k] * k
    return row


def test_histograms_scale_to_any_finite_range_and_say_what_an_out_of_range_score_means(tmp_path):
    rows = [with_probs(scored_row(i, s)) for i, s in enumerate([1.7e308, 1.7e308, 0.1, 0.2])]
    rc, text = report(tmp_path, rows, [0, 1])
    assert rc == 0
    bins = [line for line in text.splitlines() if line.startswith("  ") and "-" in line.split()[0] and line.split()[0][0].isdigit()]
    assert len(bins) == 10 and sum(int(line.split()[1]) for line in bins) == 4
    assert "2 of 4 rows score outside [0, ln 4 = 1.3863]" in text
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(
        ["report.txt", "report.html", "domains.png", "probe_entropy.png", "probe_entropy_by_domain.png"]
    )


def test_an_all_negative_pool_gets_bins_that_tell_its_scores_apart(tmp_path):
    rows = [with_probs(scored_row(i, -0.1 * (i + 1))) for i in range(5)]
    rc, text = report(tmp_path, rows, [0])
    assert rc == 0 and "0.000-0.000" not in text
    lows = [
        float(line.split()[0].split("-")[0] if not line.split()[0].startswith("-") else "-" + line.split()[0][1:].split("-")[0])
        for line in text.splitlines()
        if line.startswith("  -")
    ]
    assert lows and min(lows) == -0.5
    assert "5 of 5 rows score outside [0, ln 4" in text


def test_a_failed_report_leaves_no_folder_behind(tmp_path, monkeypatch):
    import data_juicer_daar.tools.report.page as page

    def broken(sel, out):
        (out / "domains.png").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(page, "plots", broken)
    rows = [scored_row(i, 0.1 * i) for i in range(4)]
    with pytest.raises(OSError):
        page.write_report(
            page.ReportConfig(
                pool=str(write_jsonl(tmp_path / "p.jsonl", rows)),
                selection=str(write_jsonl(tmp_path / "s.jsonl", rows[:1])),
                out=str(tmp_path / "r"),
                id_key="id",
            )
        )
    assert not (tmp_path / "r").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_rows_above_the_cut_off_left_out_by_coverage_are_counted_and_explained(tmp_path):
    # sub-domain 0: 8 rows, 2 selected (its part); sub-domain 1: 1 row, too small for a row at 20 %, scoring highest
    rows = [scored_row(i, 0.1 * i, subdomain=0) for i in range(8)] + [scored_row(8, 5.0, subdomain=1), scored_row(9, 0.05, subdomain=0)]
    rc, text = report(tmp_path, rows, [6, 7])
    assert rc == 0
    line = next(line for line in text.splitlines() if "rows above their domain's cut-off" in line)
    assert "1 (1 tiny sub-domain)" in line and "one too small for a whole row gets none" in line
