"""`daar train` per stage on the demo corpus with all defaults (fresh: no synthesis reuse).

Usage: python benchmarks/training_speed.py
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, demo_path, machine, measure, save  # noqa: E402


def main() -> None:
    out = OUT / "train_probe"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    _, rss = measure([sys.executable, "-m", "data_juicer_daar.cli", "train", "--corpus", str(demo_path()), "--out", str(out)])
    wall = time.perf_counter() - t
    manifest = json.loads((out / "manifest.json").read_text())
    metrics = manifest["metrics"]
    result = {"machine": machine(), "wall_s": wall, "peak_rss_mib": rss, "timings_s": metrics["timings_s"],
              "probe_val_accuracy": metrics["probe_val_accuracy"], "predictor_val_spearman": metrics["predictor_val_spearman"],
              "predictor_val_mse": metrics["predictor_val_mse"], "synthesis": manifest["synthesis"]["per_domain"]}
    save("training_speed", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
