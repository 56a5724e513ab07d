"""`daar train` per stage on the demo corpus with all defaults, as on a machine that never trained
(the fingerprint and synthesis caches are cleared; the converted default model is kept).

Usage: python -m benchmarks.training_speed [--synthesize]   (other `daar train` options pass through)
"""

from __future__ import annotations

import json
import shutil
import sys
import time

from benchmarks.common import OUT, demo_path, machine, measure, save


def main() -> None:
    from data_juicer_daar.method.bundle import read_manifest
    from data_juicer_daar.method.models import cache_dir

    extra = sys.argv[1:]
    name = "training_speed" + "".join(f"_{a.lstrip('-').replace('-', '_')}" for a in extra if a.startswith("--"))
    out = OUT / name
    for path in (out, cache_dir() / "fingerprints", cache_dir() / "synthesis"):
        shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    _, rss = measure([sys.executable, "-m", "data_juicer_daar.tools.cli", "train", "--corpus", str(demo_path()), "--out", str(out), *extra])
    wall = time.perf_counter() - t
    manifest = read_manifest(out)
    metrics = manifest.metrics
    result = {
        "machine": machine(),
        "args": extra,
        "bundle": str(out),
        "wall_s": wall,
        "peak_rss_mib": rss,
        "metrics": metrics,
        "synthesis": manifest.synthesis,
    }
    save(name, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
