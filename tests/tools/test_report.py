"""`daar report`: text, plots and one self-contained HTML page that a real browser renders."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_juicer.utils.constant import Fields
from helpers import dj, read_rows, recipe, theme_rows, write_jsonl

from data_juicer_daar import keys

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def scored(tiny_bundle, tmp_path_factory):
    """A pool scored and a balanced 25 % selection made by a real dj-process run."""
    tmp_path = tmp_path_factory.mktemp("report")
    pool = write_jsonl(tmp_path / "pool.jsonl", theme_rows(10))
    config = recipe(
        tmp_path,
        pool,
        [
            {"daar_domain_probe_mapper": {"bundle_path": str(tiny_bundle)}},
            {"daar_diversity_score_filter": {"bundle_path": str(tiny_bundle), "stats_export_path": str(tmp_path / "out" / "scored.jsonl")}},
            {"daar_topk_reward_selector": {"bundle_path": str(tiny_bundle), "top_ratio": 0.25, "mode": "balanced"}},
        ],
    )
    assert dj("dj-process", config, tmp_path).returncode == 0
    return tmp_path / "out"


def report(out: Path, scored: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        "--pool",
        str(scored / "scored.jsonl"),
        "--selection",
        str(scored / "selected.jsonl"),
        "--out",
        str(out),
        "--id-key",
        "id",
        *extra,
    ]
    return subprocess.run([str(Path(sys.executable).parent / "daar"), "report", *args], capture_output=True, text=True, timeout=300)


def test_html_report_shows_plots_examples_and_bundle_facts(scored, tiny_bundle, tmp_path):
    result = report(tmp_path / "r", scored, "--bundle", str(tiny_bundle))
    assert result.returncode == 0, result.stderr[-2000:]
    page = (tmp_path / "r" / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert 'src="http' not in page and "<link" not in page  # self-contained
    for name in ("domains", "probe_entropy", "probe_entropy_by_domain"):
        assert (tmp_path / "r" / f"{name}.png").stat().st_size > 1000

    pool = read_rows(scored / "scored.jsonl")
    selected = {r["id"] for r in read_rows(scored / "selected.jsonl")}
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    for domain in manifest["domains"]:
        name = domain["name"]
        rows = [r for r in pool if r[Fields.meta][keys.DOMAIN] == name]
        if not rows:
            continue
        section = page.split(f"<h3>{name} (")[1].split("</table>")[0]
        scores = [float(m[1]) for m in re.findall(r"<td>(highest|lowest)</td><td>([0-9.]+)</td>", section)]
        values = sorted((r[Fields.stats][keys.PROBE_ENTROPY] for r in rows), reverse=True)
        assert scores[0] == pytest.approx(values[0], abs=1e-4)  # the domain's highest first
        assert scores[-1] == pytest.approx(values[-1], abs=1e-4)  # its lowest last
        kept = [r[Fields.stats][keys.PROBE_ENTROPY] for r in rows if r["id"] in selected]
        if kept:
            assert f"cut-off {min(kept):.4f}" in page.split(f"<h3>{name} (")[1].split("</h3>")[0]
    assert f"<th>probe validation accuracy</th><td>{manifest['metrics']['probe_val_accuracy']}</td>" in page
    assert f"<th>blocks kept (L)</th><td>{manifest['backbone']['num_layers']}</td>" in page


def test_report_without_bundle_says_how_to_add_its_facts(scored, tmp_path):
    result = report(tmp_path / "r", scored)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Pass <code>--bundle</code>" in (tmp_path / "r" / "report.html").read_text()


def test_html_report_renders_in_headless_chromium(scored, tiny_bundle, tmp_path):
    import matplotlib.image

    if CHROMIUM is None:
        message = "needs Debian's chromium (scripts/test.sh installs it where it can)"
        pytest.fail(message) if os.environ.get("DAAR_REQUIRE_BROWSER") else pytest.skip(message)

    assert report(tmp_path / "r", scored, "--bundle", str(tiny_bundle)).returncode == 0
    shot = tmp_path / "shot.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars",
    ]
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1100,1400", (tmp_path / "r" / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1100)
    # the page drew text and the embedded plots: matplotlib's first two bar colours are on screen
    blue = np.all(np.abs(pixels - np.array([31, 119, 180]) / 255) < 0.08, axis=-1).sum()
    orange = np.all(np.abs(pixels - np.array([255, 127, 14]) / 255) < 0.08, axis=-1).sum()
    dark = (pixels.mean(-1) < 0.3).sum()
    assert blue > 500 and orange > 500 and dark > 2000, (blue, orange, dark)


def test_report_counts_the_subdomains_the_selection_covers(scored, tmp_path):
    result = report(tmp_path / "r", scored)
    assert result.returncode == 0, result.stderr[-2000:]
    pool = {r["id"]: r[Fields.meta][keys.SUBDOMAIN] for r in read_rows(scored / "scored.jsonl")}
    covered = {pool[r["id"]] for r in read_rows(scored / "selected.jsonl")}
    line = f"sub-domains covered by the selection: {len(covered)} of the pool's {len(set(pool.values()))}"
    assert line in (tmp_path / "r" / "report.txt").read_text()


def test_report_refuses_a_selection_that_is_not_from_the_pool(scored, tmp_path):
    selected = read_rows(scored / "selected.jsonl")
    extra = [{**r, "id": f"{r['id']}-elsewhere"} for r in selected[:3]]
    bad = write_jsonl(tmp_path / "other.jsonl", selected + extra)
    args = ["--pool", str(scored / "scored.jsonl"), "--selection", str(bad), "--out", str(tmp_path / "r"), "--id-key", "id"]
    result = subprocess.run([str(Path(sys.executable).parent / "daar"), "report", *args], capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("daar: error:")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr
    assert f"3 of {len(selected) + 3} selected rows are not in the pool" in errors[0]
    assert not (tmp_path / "r" / "report.txt").exists()


def test_html_in_rows_is_escaped_in_the_page(scored, tmp_path):
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    pool, selected = read_rows(scored / "scored.jsonl"), read_rows(scored / "selected.jsonl")
    victim = max(pool, key=lambda r: r[Fields.stats][keys.PROBE_ENTROPY])["id"]  # shown among its domain's top rows
    for rows in (pool, selected):
        for r in rows:
            if r["id"] == victim:
                r["instruction"] = hostile
    args = [
        "--pool",
        str(write_jsonl(tmp_path / "pool.jsonl", pool)),
        "--selection",
        str(write_jsonl(tmp_path / "sel.jsonl", selected)),
        "--out",
        str(tmp_path / "r"),
        "--id-key",
        "id",
    ]
    result = subprocess.run([str(Path(sys.executable).parent / "daar"), "report", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text


def test_a_report_from_the_recipe_states_its_rule_and_reads_its_files(scored, tiny_bundle, tmp_path):
    recipe = scored.parent / "recipe.yaml"
    daar = str(Path(sys.executable).parent / "daar")
    args = [daar, "report", "--recipe", str(recipe), "--out", str(tmp_path / "r"), "--id-key", "id"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    text = (tmp_path / "r" / "report.txt").read_text().splitlines()
    rule = (
        "  selection rule: daar_topk_reward_selector: balanced: top_ratio 0.25, a part per domain in proportion to the square root "
        "of its rows, each part spread over its sub-domains in proportion to their rows, highest probe_entropy first"
    )
    assert rule in text
    given = report(tmp_path / "given", scored)  # the same files named by hand: the same report, the rule aside
    assert given.returncode == 0, given.stderr[-2000:]
    by_hand = (tmp_path / "given" / "report.txt").read_text().splitlines()
    assert [line for line in text if line != rule] == [line for line in by_hand if not line.startswith("  selection rule:")]
    assert "pass --recipe" in next(line for line in by_hand if line.startswith("  selection rule:"))
    page = (tmp_path / "r" / "report.html").read_text()
    assert "blocks kept (L)" in page and rule.strip() in page  # the recipe's bundle, and the rule on the page
    # a selector op logs the same words when it picks
    log = dj("dj-process", recipe, scored.parent)
    said = "selecting by balanced: top_ratio 0.25, a part per domain in proportion to the square root of its rows"
    assert f"daar_topk_reward_selector: {said}" in log.stdout + log.stderr
