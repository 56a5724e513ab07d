"""Scoring speed on the demo corpus, default model, L=3, side by side in one run (samples/s).

  (a) limit      the truncated model alone on pre-tokenized, length-sorted, dynamically padded batches
  (b) ours       mapper + filter + selector inside `dj-process` (start-up reported separately)
  (c) reference  the paper's scripts: one sample at a time, padded to 1024 tokens (first --ref-n samples)
  (d) upstream   the proposed k-means selector's per-sample embedding with the full default model
                 (first --up-n samples; its k-means and Python loop are timed on the whole corpus)

Each variant runs in its own process, so its peak memory is its own.
Usage: python -m benchmarks.scoring_speed [--sizes 2000,8000] [--ref-n 100] [--up-n 50] [--name scoring_speed]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks.common import OUT, demo_bundle, demo_rows, machine, measure, run_recipe, save


def rows_of_size(n: int) -> list[dict]:
    rows = demo_rows()
    return [dict(rows[i % len(rows)], id=f"{rows[i % len(rows)]['id']}~{i // len(rows)}") for i in range(n)]


def texts_of_size(n: int) -> list[str]:
    from data_juicer_daar.method.text import render

    return [render(r).text for r in rows_of_size(n)]


def variant(name: str, n: int, bundle: str) -> dict:
    """Run inside a child process; returns timings."""
    import torch

    from data_juicer_daar.method.backbone import Backbone
    from data_juicer_daar.method.bundle import load_bundle

    texts = texts_of_size(n)
    t = time.perf_counter()
    if name == "upstream":
        from transformers import AutoModel, AutoTokenizer

        from benchmarks.peers import upstream_embed, upstream_kmeans_select
        from data_juicer_daar.method.models import prepare_default_model, quiet_loading

        with quiet_loading():
            model = AutoModel.from_pretrained(prepare_default_model()).eval()
        tokenizer = AutoTokenizer.from_pretrained(prepare_default_model())
        load = time.perf_counter() - t
        t = time.perf_counter()
        emb = upstream_embed(model, tokenizer, texts)
        embed_s = time.perf_counter() - t
        import numpy as np

        fake = np.random.default_rng(0).normal(size=(len(demo_rows()), emb.shape[1])).astype(np.float32)
        fake /= np.linalg.norm(fake, axis=1, keepdims=True)
        t = time.perf_counter()
        upstream_kmeans_select(fake, 0.2, "inter")
        return {"load_s": load, "embed_s": embed_s, "n": n, "select_s_full_corpus": time.perf_counter() - t}
    backbone = Backbone(None, num_layers=3, max_length=1024, batch_size=32)
    load = time.perf_counter() - t
    torch.set_num_threads(torch.get_num_threads())
    if name == "limit":
        ids = backbone.tokenize(texts)
        t = time.perf_counter()
        backbone.forward_ids(ids)
        return {"load_s": load, "run_s": time.perf_counter() - t, "n": n, "tokens": sum(len(i) for i in ids)}
    if name == "reference":
        from benchmarks.peers import reference_scores

        bundle_ = load_bundle(bundle)
        t = time.perf_counter()
        reference_scores(backbone, bundle_, texts)
        return {"load_s": load, "run_s": time.perf_counter() - t, "n": n}
    raise ValueError(name)


def run_dj(n: int, bundle: str) -> dict:
    pool = OUT / f"speed_{n}.jsonl"
    OUT.mkdir(parents=True, exist_ok=True)
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows_of_size(n)))
    result = run_recipe("daar_select.yaml", OUT / f"speed_{n}", pool, bundle)
    result.pop("log")
    return {"n": n, **result, "startup_s": result["wall_s"] - sum(result["ops_s"].values())}


def child(name: str, n: int, bundle: str) -> tuple[dict, float]:
    code = f"import json; from benchmarks.scoring_speed import variant; print('RESULT', json.dumps(variant({name!r}, {n}, {bundle!r})))"
    out, rss = measure([sys.executable, "-c", code])
    result = json.loads(out.rsplit("RESULT", 1)[1])
    result["peak_rss_mib"] = rss
    return result, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000", help="pool sizes for (a) and (b), comma-separated (corpus repeated)")
    parser.add_argument("--ref-n", type=int, default=100, help="samples timed for the reference scoring (c)")
    parser.add_argument("--up-n", type=int, default=50, help="samples timed for the upstream embedding (d)")
    parser.add_argument("--name", default="scoring_speed", help="results file name under benchmarks/results/")
    args = parser.parse_args()
    bundle = str(demo_bundle())
    results = {"machine": machine(), "sizes": {}}
    for n in [int(s) for s in args.sizes.split(",")]:
        limit, _ = child("limit", n, bundle)
        ours = run_dj(n, bundle)
        results["sizes"][n] = {"limit": limit, "ours": ours}
        print(
            f"n={n}: limit {n / limit['run_s']:.1f}/s, ours ops {n / sum(ours['ops_s'].values()):.1f}/s (wall {n / ours['wall_s']:.1f}/s)",
            flush=True,
        )
    results["reference"], _ = child("reference", args.ref_n, bundle)
    results["upstream"], _ = child("upstream", args.up_n, bundle)
    path = save(args.name, results)
    first = results["sizes"][min(results["sizes"])]
    a = first["limit"]["n"] / first["limit"]["run_s"]
    b = first["ours"]["n"] / sum(first["ours"]["ops_s"].values())
    c = results["reference"]["n"] / results["reference"]["run_s"]
    d = results["upstream"]["n"] / results["upstream"]["embed_s"]
    print(
        f"(a) limit {a:.1f}/s  (b) ours {b:.1f}/s = {b / a:.2f} x (a)  (c) reference {c:.2f}/s -> (b) = {b / c:.1f} x (c)  (d) "
        f"upstream {d:.2f}/s"
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
