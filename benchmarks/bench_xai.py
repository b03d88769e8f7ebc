"""Throughput and memory of the explanation methods on the trained models.

    .venv/bin/python benchmarks/bench_xai.py            # both models, prints Markdown tables
    .venv/bin/python benchmarks/bench_xai.py --quick    # a smoke run with small sizes

For each model: the roofline (forward + backward throughput of the bare model, inputs/s, which no
gradient method can beat), Grad-CAM and IG throughput, the fewest IG steps per quadrature rule that
reach a median relative completeness gap <= 1 %, naive per-example implementations (sub-model rebuilt
per call, one example at a time, steps in a Python loop), RISE against a per-mask Python loop, the
seconds per example of every method, and the peak memory of IG at 32 and 128 steps (measured in a
fresh process each: peak RSS on the CPU, TensorFlow's peak allocation on a GPU).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import xai_perturbation as xp  # noqa: E402
import xai_utils as xu  # noqa: E402


def timed(fn, repeat=3):
    """Best wall time of ``repeat`` runs after one warm-up run (tracing, allocation)."""
    fn()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def load(name):
    model = keras.models.load_model(os.path.join(ROOT, "models", f"{name}.keras"))
    if name == "MNIST1D":
        import mnist1d_utils
        x = mnist1d_utils.make_dataset()["x_test"][..., None].astype(np.float32)
    else:
        import hmt_utils
        (_, _), (x, _), _ = hmt_utils.load_hmt(progress=False)
        x = x.astype(np.float32)
    return model, x


def roofline(model, x, batch):
    """Forward + backward (gradient of the logits w.r.t. the input) of the bare model: inputs/s."""
    score = xu.score_model(model, "logit")

    @tf.function
    def step(xb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            s = tf.reduce_sum(score(xb)[:, 0])
        return tape.gradient(s, xb)
    xb = tf.constant(np.resize(x, (batch,) + x.shape[1:]))
    return batch / timed(lambda: step(xb).numpy())


# --- naive references, written here on purpose: what the library replaces ---

def naive_grad_cam(model, x, layer_name):
    """Sub-model rebuilt per call, one example at a time, eager."""
    out = []
    for xi in x:
        conv = model.get_layer(layer_name)
        sub = keras.Model(model.inputs, [conv.output, model.layers[-2].output])
        with tf.GradientTape() as tape:
            feats, logits = sub(xi[None])
            c = int(tf.argmax(logits[0]))
            picked = logits[0, c]
        grads = tape.gradient(picked, feats)
        weights = tf.reduce_mean(grads, axis=list(range(1, len(grads.shape) - 1)), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * feats, -1))
        out.append(cam.numpy())
    return out


def naive_ig(model, x, steps=32):
    """One example at a time, the steps in a Python loop (left Riemann), eager."""
    sub = keras.Model(model.inputs, model.layers[-2].output)
    out = []
    for xi in x:
        c = int(np.argmax(sub(xi[None])[0]))
        total = np.zeros_like(xi)
        for k in range(steps):
            point = tf.constant((k / steps) * xi[None])
            with tf.GradientTape() as tape:
                tape.watch(point)
                s = sub(point)[0, c]
            total += tape.gradient(s, point).numpy()[0]
        out.append(xi * total / steps)
    return out


def naive_rise(model, x, n_masks, seed=0):
    """RISE with one model call per mask (masks drawn the same way, one at a time); x is one example."""
    spatial = x.shape[:-1]
    sal = np.zeros(spatial, np.float32)
    c = int(np.argmax(model(x[None])[0]))
    for i in range(n_masks):
        mask = xp.rise_masks(1, spatial, seed=seed + i)[0]
        p = float(model(x[None] * mask[None, ..., None])[0, c])
        sal += p * mask
    return sal / (n_masks * 0.5)


def relative_gap(model, x, steps, method):
    _, delta = xu.integrated_gradients(model, x, steps=steps, method=method, return_delta=True, progress=False)
    f = xu.predict_scores(model, x)
    c = f.argmax(-1)
    f0 = xu.predict_scores(model, np.zeros_like(x))
    rows = np.arange(len(x))
    return np.abs(delta) / np.abs(f[rows, c] - f0[rows, c])


def peak_memory(name, steps, n):
    """IG in a fresh process; returns the peak memory in MiB (RSS on CPU, TF's peak on GPU)."""
    code = f"""
import os, resource, sys, json
sys.path.insert(0, {ROOT!r}); sys.argv = ["x"]
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
sys.path.insert(0, {os.path.join(ROOT, 'benchmarks')!r})
from bench_xai import load
import xai_utils as xu
model, x = load({name!r})
x = x[:{n}]
gpu = bool(tf.config.list_physical_devices("GPU"))
xu.predict_scores(model, x)                       # baseline: model, data and the forward pass resident
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if gpu:
    tf.config.experimental.reset_memory_stats("GPU:0")
xu.integrated_gradients(model, x, steps={steps}, progress=False)
peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if gpu else \
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
print(json.dumps(peak))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(name, quick):
    model, x = load(name)
    two_d = x.ndim == 4
    n = (16 if two_d else 64) if quick else (128 if two_d else 1000)
    x = x[:n]
    batch = 128 if two_d else 1024
    rows = {}
    rows["roofline (forward + backward), inputs/s"] = roofline(model, x, batch)
    t = timed(lambda: xu.grad_cam(model, x, batch_size=batch, progress=False), repeat=2)
    rows["Grad-CAM, examples/s"] = len(x) / t
    t = timed(lambda: xu.integrated_gradients(model, x, batch_size=batch, progress=False), repeat=2)
    ig = len(x) / t
    rows["IG (32 steps, Gauss-Legendre), examples/s"] = ig
    rows["IG inputs/s (examples/s x 32)"] = ig * 32
    rows["IG share of the roofline"] = ig * 32 / rows["roofline (forward + backward), inputs/s"]
    n_naive = 4 if two_d else 32
    layer = xu.find_layer(model).name
    t = timed(lambda: naive_grad_cam(model, x[:n_naive], layer), repeat=1)
    rows["naive Grad-CAM (per example, sub-model per call), examples/s"] = n_naive / t
    rows["Grad-CAM speed-up over naive"] = rows["Grad-CAM, examples/s"] / rows[
        "naive Grad-CAM (per example, sub-model per call), examples/s"]
    n_naive_ig = 2 if two_d else 8
    t = timed(lambda: naive_ig(model, x[:n_naive_ig]), repeat=1)
    rows["naive IG (per example, steps in a loop), examples/s"] = n_naive_ig / t
    rows["IG speed-up over naive"] = ig / rows["naive IG (per example, steps in a loop), examples/s"]

    # the fewest steps per rule reaching a median relative gap <= 1 %
    xs = x[: (8 if quick else 32) if two_d else (64 if quick else 256)]
    steps_table = []
    for method in xu.IG_METHODS:
        found = None
        for steps in (2, 4, 8, 16, 32, 64, 128, 256):
            if method == "riemann_trapezoid" and steps < 2:
                continue
            gap = relative_gap(model, xs, steps, method)
            if np.median(gap) <= 0.01:
                found = (steps, float(np.median(gap)))
                break
        if found:
            t = timed(lambda steps=found[0], method=method: xu.integrated_gradients(
                model, x, steps=steps, method=method, batch_size=batch, progress=False), repeat=1)
            steps_table.append((method, found[0], found[1], len(x) / t))
        else:
            steps_table.append((method, None, None, None))

    # RISE: vectorised against a per-mask loop
    masks = 400 if quick else 4000
    loop_masks = (50 if quick else 500) if two_d else masks
    t_vec = timed(lambda: xp.rise(model, x[:1], n_masks=masks, batch_size=batch, progress=False), repeat=1)
    t_loop = timed(lambda: naive_rise(model, x[0], loop_masks), repeat=1) * masks / loop_masks
    rows[f"RISE ({masks} masks), s / example"] = t_vec
    extrapolated = f", extrapolated from {loop_masks}" if loop_masks != masks else ""
    rows[f"per-mask loop ({masks} masks{extrapolated}), s / example"] = t_loop
    rows["RISE speed-up over the loop"] = t_loop / t_vec
    t = timed(lambda: xp.sise(model, x[:4], batch_size=batch, progress=False), repeat=1)
    rows["SISE, s / example"] = t / 4
    rows["Grad-CAM, s / example"] = 1 / rows["Grad-CAM, examples/s"]
    rows["IG (32 steps), s / example"] = 1 / ig

    mem_n = 32 if two_d else 1000
    for steps in (32, 128):
        rows[f"IG peak memory above the forward pass, {steps} steps, {mem_n} examples (MiB)"] = \
            peak_memory(name, steps, mem_n)
    return rows, steps_table


def bench_road(repeat=5):
    """ROAD's noisy linear imputation of one 150 x 150 x 3 tile: seconds by share of pixels removed,
    for random pixels and for the top of a smooth map (one large connected region, the harder case)."""
    from scipy.ndimage import gaussian_filter

    import xai_metrics as xm
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (1, 150, 150, 3)).astype(np.float32)
    smooth = gaussian_filter(rng.random((150, 150)), 12).ravel()
    order = np.argsort(-smooth)
    rows = []
    for share in (0.1, 0.5, 0.9):
        random_removed = rng.random((1, 150, 150)) < share
        region = np.zeros(150 * 150, bool)
        region[order[: int(share * region.size)]] = True
        region = region.reshape(1, 150, 150)
        t_random = timed(lambda r=random_removed: xm.road_impute(x, r), repeat=repeat)
        t_region = timed(lambda r=region: xm.road_impute(x, r), repeat=repeat)
        rows.append((share, t_random, t_region))
    return rows


def main():
    warnings.filterwarnings("ignore", message=".*structure of `inputs`.*")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", nargs="+", default=["MNIST1D", "HMT"])
    parser.add_argument("--road-only", action="store_true", help="only the ROAD imputation benchmark")
    args = parser.parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    print(f"# bench_xai, {datetime.date.today()}: TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"GPUs: {[g.name for g in gpus] or 'none'}\n")
    print("## ROAD imputation, one 150 x 150 x 3 tile (seconds, best of 5)\n")
    print("| pixels removed | random pixels | top of a smooth map (one region) |\n|---|---|---|")
    for share, t_random, t_region in bench_road(repeat=2 if args.quick else 5):
        print(f"| {share:.0%} | {t_random:.3f} | {t_region:.3f} |")
    print(flush=True)
    if args.road_only:
        return
    for name in args.models:
        rows, steps_table = bench(name, args.quick)
        print(f"## {name}\n\n| measure | value |\n|---|---|")
        for k, v in rows.items():
            print(f"| {k} | {v:.3g} |" if isinstance(v, float) else f"| {k} | {v} |")
        print("\n| IG rule | fewest steps with median gap <= 1 % | median gap | examples/s at those steps |")
        print("|---|---|---|---|")
        for method, steps, gap, speed in steps_table:
            print(f"| {method} | {steps} | {gap:.1e} | {speed:.3g} |" if steps else f"| {method} | > 256 | - | - |")
        print(flush=True)


if __name__ == "__main__":
    main()
