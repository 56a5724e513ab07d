"""The README's "Use it on your data" block runs as written on a user's own file (only the pool is ours)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import read_rows, theme_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # daar train with the default model, then dj-process


def readme_block(title: str) -> list[str]:
    """The shell commands of the first ```bash block after ``title`` (continued lines joined)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index(title) :], re.S).group(1)
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_use_it_on_your_data_block_chains_on_a_users_own_file(tmp_path):
    commands = readme_block("## Use it on your data")
    assert commands[0] == "source .venv/bin/activate"
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    rows = [{k: v for k, v in r.items() if k != "id"} for r in theme_rows(10)]  # a user's pool need not carry an id
    write_jsonl(tmp_path / "my_pool.jsonl", rows)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands[1:]:
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{command}\n{(result.stdout + result.stderr)[-3000:]}"
    assert len(read_rows(tmp_path / "my_run" / "selected.jsonl")) == int(0.2 * len(rows))
    assert (tmp_path / "my_run" / "report" / "report.html").is_file()
    report = (tmp_path / "my_run" / "report" / "report.txt").read_text()
    rule = "balanced: top_ratio 0.2, a part per domain in proportion to the square root of its rows"
    assert f"  selection rule: daar_topk_reward_selector: {rule}" in report
    assert "blocks kept (L)" in (tmp_path / "my_run" / "report" / "report.html").read_text()  # the facts of the recipe's bundle
