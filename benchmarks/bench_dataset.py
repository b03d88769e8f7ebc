"""What streaming to HDF5 costs, and that memory stays flat as the data set grows.

    .venv/bin/python benchmarks/bench_dataset.py            # HMT model and tiles; prints Markdown
    .venv/bin/python benchmarks/bench_dataset.py --quick    # a smoke run with small sizes

Overhead: ``explain_dataset`` on the HMT test tiles (an array in memory) against the in-memory work
that gives the same content, done batch by batch in the same process: the model's probabilities
(``predict_scores``) and the method's maps for each batch, kept in memory. Runs alternate A, B, A, B...
and the best of each is kept, so that a busy machine slows both alike. Grad-CAM is the hard case (its
maps are the largest output per second of compute), with each compression; IG (32 steps) the usual
one. The last batch's write cannot overlap any work, so the IG case uses several batches.

Memory: the peak anonymous resident memory (RssAnon, sampled every 20 ms; Linux) of a fresh process
that explains a memory-mapped file of N and of 10 N tiles with Grad-CAM (the maps go to disk, never
all in memory). The memory map's own pages are file-backed (reclaimable page cache) and not counted.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def in_memory(model, x, method, batch_size, options):
    import xai.dataset.explain as xd
    from xai.core import predict_scores
    function = xd.method_function(method)
    maps, probs = [], []
    for a in range(0, len(x), batch_size):
        xb = x[a:a + batch_size]
        p = predict_scores(model, xb, score="probability", batch_size=len(xb))
        probs.append(p)
        maps.append(function(model, xb, p.argmax(1).astype(np.int32), **options))
    return np.concatenate(maps), np.concatenate(probs)


def overhead(model, x, method, batch_size, options, repeat, folder, compression):
    import xai.dataset.explain as xd
    out = os.path.join(folder, f"{method}.h5")
    runs = {"memory": lambda: in_memory(model, x, method, batch_size, options),
            "hdf5": lambda: xd.explain_dataset(model, x, method, out, batch_size=batch_size, resume=False,
                                               progress=False, compression=compression, **options)}
    for run in runs.values():                                             # warm-up: tracing
        run()
    best = {k: np.inf for k in runs}
    for _ in range(repeat):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            best[key] = min(best[key], time.perf_counter() - start)
    size = os.path.getsize(out)
    return best, size


MEMORY_CHILD = """
import os, sys, threading, time, numpy as np, keras
sys.path.insert(0, {root!r})
import xai.dataset.explain as xd

def anonymous_mib():
    # resident memory that is not file-backed: a memory map's pages are file-backed and reclaimable
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
peak, running = [0.0], [True]
def sample():
    while running[0]:
        peak[0] = max(peak[0], anonymous_mib())
        time.sleep(0.02)
model = keras.models.load_model({model!r})
x = np.load({data!r}, mmap_mode="r")
thread = threading.Thread(target=sample, daemon=True)
thread.start()
start = time.perf_counter()
xd.explain_dataset(model, x, "grad_cam", {out!r}, batch_size=64, resume=False, progress=False)
seconds = time.perf_counter() - start
running[0] = False
thread.join()
print(peak[0], seconds)
"""


def memory(model_path, tiles, sizes, folder):
    rows = []
    for n in sizes:
        data = os.path.join(folder, f"tiles_{n}.npy")
        mm = np.lib.format.open_memmap(data, mode="w+", dtype=np.float32, shape=(n,) + tiles.shape[1:])
        for a in range(0, n, len(tiles)):                                # the test tiles, repeated
            mm[a:a + len(tiles)] = tiles[: n - a]
        mm.flush()
        del mm
        code = MEMORY_CHILD.format(root=ROOT, model=model_path, data=data, out=os.path.join(folder, f"m_{n}.h5"))
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peak_mib, seconds = map(float, run.stdout.split()[-2:])
        rows.append((n, peak_mib, seconds, os.path.getsize(data) / 2**20))
        os.remove(data)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    import hmt_utils
    model_path = os.path.join(ROOT, "models", "HMT.keras")
    model = keras.models.load_model(model_path)
    (_, _), (x, _), _ = hmt_utils.load_hmt(progress=False)
    x = x.astype(np.float32)
    n = 32 if args.quick else len(x)
    repeat = 1 if args.quick else 3
    print(f"# explain_dataset benchmark, {datetime.date.today()}")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}, GPU: {[d.name for d in tf.config.list_physical_devices('GPU')] or 'none'}\n")
    with tempfile.TemporaryDirectory() as folder:
        print(f"## Overhead of streaming to HDF5 (HMT test tiles; best of {repeat}, alternating)\n")
        print("| method | tiles | batch | compression | in memory, s | explain_dataset → HDF5, s | overhead | file, MB |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        n_ig = max(8, n // 8)
        cases = [("grad_cam", {}, n, 64, "gzip"), ("grad_cam", {}, n, 64, "lzf"), ("grad_cam", {}, n, 64, None),
                 ("integrated_gradients", {"steps": 32}, n_ig, 16, "gzip")]
        for method, options, count, batch, compression in cases:
            best, size = overhead(model, x[:count], method, batch, options, repeat, folder, compression)
            ratio = best["hdf5"] / best["memory"] - 1
            print(f"| {method} | {count} | {batch} | {compression or 'none'} | {best['memory']:.2f} | "
                  f"{best['hdf5']:.2f} | {ratio * 100:+.1f} % | {size / 1e6:.1f} |")
        sizes = (64, 640) if args.quick else (500, 5000)
        print("\n## Peak memory, Grad-CAM over a memory-mapped file of N tiles (fresh process each)\n")
        print("| N tiles | data on disk, MiB | peak anonymous RSS, MiB | seconds |")
        print("| --- | --- | --- | --- |")
        for n_tiles, peak, seconds, disk in memory(model_path, x, sizes, folder):
            print(f"| {n_tiles} | {disk:.0f} | {peak:.0f} | {seconds:.1f} |")
    print("\n" + json.dumps({"quick": args.quick}))


if __name__ == "__main__":
    main()
