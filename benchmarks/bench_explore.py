"""How fast the explorer opens and redraws, on every HMT tile (the course's train and test pooled,
5000 tiles of 150 x 150).

    .venv/bin/python benchmarks/bench_explore.py            # prints Markdown for BENCHMARKS.md
    .venv/bin/python benchmarks/bench_explore.py --quick    # 300 random tiles: a smoke run

Two map files are written first (not timed) by ``explain_dataset`` with a tiny CNN: Grad-CAM maps
(H, W) and gradient maps (H, W, 3), gzip as the library writes them. Then, each in a fresh
explorer: **open** is ``explore(files, tiles, groups=slides)`` plus building the widget and
drawing the first tile (what a user waits for after running the cell); **redraw** is one change of
selection (the class drop-down: a new selection, a map read from each file, one PNG) and one step
of the example slider, each the median of 15 changes. Memory: the explorer's resident growth
while open (the maps stay on disk: it grows by the per-example columns, not by the maps).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def tiles(quick: bool):
    """uint8 (N, 150, 150, 3) tiles, int (N,) labels, (N,) slides."""
    if quick:
        rng = np.random.default_rng(0)
        return (rng.integers(0, 256, (300, 150, 150, 3)).astype(np.uint8), np.arange(300) % 8,
                np.repeat(np.array(["a", "b", "c"]), 100))
    from xai.training.slides import pooled_tiles
    x, y, groups, _ = pooled_tiles(progress=False)
    return x, y, groups.slide


def tiny_model(size: int):
    import keras
    from keras import layers
    return keras.Sequential([keras.Input((size, size, 3)), layers.Rescaling(1 / 255.0),
                             layers.Conv2D(4, 5, strides=2, activation="relu", name="conv"),
                             layers.GlobalAveragePooling2D(), layers.Dense(8), layers.Softmax()])


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(files: dict, x, y, slides) -> dict:
    from xai.explore import explore
    before = _rss_mb()
    start = time.perf_counter()
    ex = explore(files, x, labels=y, groups={"slide": slides})
    ex.widget                                                                # noqa: B018  builds and draws the first
    opened = time.perf_counter() - start
    grown = _rss_mb() - before
    changes, steps = [], []
    for k in range(15):
        start = time.perf_counter()
        ex._widgets["true_class"].value = k % 8                              # as the drop-down does
        changes.append(time.perf_counter() - start)
        start = time.perf_counter()
        ex._widgets["at"].value = 1 if ex._widgets["at"].value == 0 else 0
        steps.append(time.perf_counter() - start)
    return {"open_s": opened, "change_ms": 1000 * statistics.median(changes), "step_ms": 1000 * statistics.median(steps),
            "rss_growth_mb": grown}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    from xai.dataset import explain_dataset
    x, y, slides = tiles(args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-explore-") as work:
        model = tiny_model(x.shape[1])
        start = time.perf_counter()
        files = {m: explain_dataset(model, (x, y), m, os.path.join(work, f"{m}.h5"), batch_size=128, progress=False)
                 for m in ("grad_cam", "saliency")}
        written = time.perf_counter() - start
        sizes = {m: os.path.getsize(f) / 2**20 for m, f in files.items()}
        r = measure(files, x, y, slides)
    machine = platform.processor() or platform.machine()
    print(f"# explorer, {len(x)} tiles {x.shape[1]} x {x.shape[2]}, {datetime.date.today()}, {machine}, {os.cpu_count()} cores")
    print(f"(map files written in {written:.0f} s, not timed: {', '.join(f'{m} {s:.0f} MiB' for m, s in sizes.items())}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)\n")
    print("| step | time |\n| --- | --- |")
    print(f"| open: explore(...) + widget + first tile | {r['open_s']:.2f} s |")
    print(f"| change the class (new selection, 2 maps read, PNG) | {r['change_ms']:.0f} ms (median of 15) |")
    print(f"| next example (2 maps read, PNG) | {r['step_ms']:.0f} ms (median of 15) |")
    print(f"| resident memory grown while open | {r['rss_growth_mb']:.0f} MiB |")


if __name__ == "__main__":
    main()
