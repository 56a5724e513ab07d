"""A GPU run is not silently different: bfloat16 scoring selects what float32 selects (on the CPU,
default model, demo corpus)."""

import pytest

pytestmark = pytest.mark.slow


def test_bf16_scoring_selects_what_fp32_selects(tmp_path):
    from data_juicer_daar.method.corpus import read_jsonl
    from data_juicer_daar.method.scoring import Scorer
    from data_juicer_daar.method.selection import TopkSpec
    from data_juicer_daar.method.text import render
    from data_juicer_daar.method.training import DaarTrainer, TrainConfig
    from data_juicer_daar.tools.demo import demo_corpus

    rows = read_jsonl(demo_corpus())[::5]  # 400 rows, every source of the demo corpus
    bundle = DaarTrainer(TrainConfig(max_length=256)).fit(rows).save(tmp_path / "probe")
    texts = [render(r).text for r in rows]
    fp32, bf16 = (Scorer(bundle, device="cpu", dtype=dtype).score(texts) for dtype in ("float32", "bfloat16"))
    assert sum(a == b for a, b in zip(fp32.domains, bf16.domains)) >= 0.95 * len(rows)
    for score in ("probe_entropy", "predictor"):
        for mode in ("overall", "balanced"):
            spec = TopkSpec.build(None, 0.2, mode, None, sorted(set(fp32.domains)), coverage=False)
            a = set(spec.pick(getattr(fp32, score), fp32.domains).tolist())
            b = set(spec.pick(getattr(bf16, score), bf16.domains).tolist())
            assert len(a) == 80 and len(a & b) >= 0.95 * len(a), (score, mode, len(a & b))
