"""Throughput and memory of the explanation methods on the trained models.

    .venv/bin/python benchmarks/bench_xai.py            # both models, prints Markdown tables
    .venv/bin/python benchmarks/bench_xai.py --quick    # a smoke run with small sizes

For each model: the roofline (forward + backward throughput of the bare model, inputs/s, which no
gradient method can beat), Grad-CAM and IG throughput, the fewest IG steps per quadrature rule that
reach a median relative completeness gap <= 1 %, naive per-example implementations (sub-model rebuilt
per call, one example at a time, steps in a Python loop), RISE against a per-mask Python loop, the
seconds per example of every method, and the peak memory of IG at 32 and 128 steps (measured in a
fresh process each: peak RSS on the CPU, TensorFlow's peak allocation on a GPU).

The gradient family (gradient, gradient x input, SmoothGrad, SmoothGrad², VarGrad, the noise tunnel
over IG, expected gradients, IG with the blur and uniform baselines, Grad-CAM++) is reported as a
share of the forward + backward roofline (model inputs per second, each noisy copy, path point or
reference draw counting as one input); Score-CAM as a share of the forward-only roofline (one
masked input per channel of its layer). Peak memory of SmoothGrad, the noise tunnel over IG and
expected gradients at two sample or step counts checks that memory is flat in them.
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

import xai.methods.cam as xc  # noqa: E402
import xai.methods.gradients as xg  # noqa: E402
import xai.methods.perturbation as xp  # noqa: E402
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


def forward_roofline(model, x, batch):
    """Forward pass of the bare model (the logits): inputs/s, which no perturbation method can beat."""
    score = xu.score_model(model, "logit")
    step = tf.function(lambda xb: score(xb))
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


def relative_gap(model, x, steps, rule):
    attributions = xu.integrated_gradients(model, x, steps=steps, rule=rule, progress=False)
    return xu.completeness_gap(model, x, attributions)[1]                 # the one definition of the gap


def peak_memory(name, call, n):
    """``call`` (an expression on ``model`` and ``x``, e.g. ``xu.integrated_gradients(model, x)``) in a
    fresh process; returns the peak of TensorFlow's allocator during the call (tensors: inputs,
    activations, gradients) above what it held before it, in MiB, on the CPU or the GPU alike. The
    NumPy arrays a method fills (its output, N x the input's size) are not TensorFlow's and are not
    counted. (Two readings of the process's maximum RSS, used before, read 0 whenever the forward
    pass had already reached a higher mark.)"""
    code = f"""
import os, sys, json
sys.path.insert(0, {ROOT!r}); sys.argv = ["x"]
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
sys.path.insert(0, {os.path.join(ROOT, 'benchmarks')!r})
from bench_xai import load
import xai.methods.gradients as xg, xai_utils as xu
model, x = load({name!r})
references = x[-64:]
x = x[:{n}]
gpu = bool(tf.config.list_physical_devices("GPU"))
device = "GPU:0" if gpu else "CPU:0"
xu.predict_scores(model, x)                       # baseline: model, data and the forward pass resident
before = tf.config.experimental.get_memory_info(device)["current"]
tf.config.experimental.reset_memory_stats(device)
{call}
peak = (tf.config.experimental.get_memory_info(device)["peak"] - before) / 2**20
print(json.dumps(peak))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(name, quick):
    model, x = load(name)
    two_d = x.ndim == 4
    n = (16 if two_d else 64) if quick else (128 if two_d else 1000)
    references = x[-64:]                                  # expected gradients' reference set, apart from x
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
    for rule in xu.IG_RULES:
        found = None
        for steps in (2, 4, 8, 16, 32, 64, 128, 256):
            if rule == "riemann_trapezoid" and steps < 2:
                continue
            gap = relative_gap(model, xs, steps, rule)
            if np.median(gap) <= 0.01:
                found = (steps, float(np.median(gap)))
                break
        if found:
            t = timed(lambda steps=found[0], rule=rule: xu.integrated_gradients(
                model, x, steps=steps, rule=rule, batch_size=batch, progress=False), repeat=1)
            steps_table.append((rule, found[0], found[1], len(x) / t))
        else:
            steps_table.append((rule, None, None, None))

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

    mem_n = (8 if two_d else 200) if quick else (32 if two_d else 1000)
    for steps in (32, 128):
        rows[f"IG peak memory above the forward pass, {steps} steps, {mem_n} examples (MiB)"] = \
            peak_memory(name, f"xu.integrated_gradients(model, x, steps={steps}, progress=False)", mem_n)
    rows.update(gradient_family(name, model, x, references, batch, rows["roofline (forward + backward), inputs/s"],
                                quick, mem_n))
    return rows, steps_table


def gradient_family(name, model, x, references, batch, roof, quick, mem_n):
    """Throughput of the gradient family and the CAMs as shares of their rooflines, and their memory
    at two sample or step counts (flat: memory is bounded by batch_size, not by samples or steps)."""
    two_d = x.ndim == 4
    value_range = (0, 255) if two_d else (float(min(x.min(), references.min())), float(max(x.max(), references.max())))
    few = x[: (4 if quick else 16) if two_d else (64 if quick else 1000)]      # for the costly methods
    samples, ig_samples, ig_steps, eg_samples, draws = (10, 4, 8, 20, 3) if quick else (50, 10, 16, 200, 10)
    rows = {}

    # the classes are given, as the roofline's are (the methods would otherwise add a forward pass)
    predicted = {id(v): xu.predict_scores(model, v, batch_size=batch).argmax(-1) for v in (x, few)}

    def measure(label, run, xs, inputs_per_example, roofline, roofline_name):
        t = timed(lambda: run(xs), repeat=1 if len(xs) * inputs_per_example > 2000 else 2)
        rows[f"{label}, examples/s"] = len(xs) / t
        rows[f"{label}, share of the {roofline_name} roofline"] = len(xs) * inputs_per_example / t / roofline

    fb = "forward + backward"
    common = dict(batch_size=batch, progress=False)
    measure("gradient", lambda v: xg.saliency(model, v, predicted[id(v)], **common), x, 1, roof, fb)
    measure("gradient x input", lambda v: xg.gradient_x_input(model, v, predicted[id(v)], **common), x, 1, roof, fb)
    for label, method in (("SmoothGrad", xg.smoothgrad), ("SmoothGrad²", xg.smoothgrad_squared), ("VarGrad", xg.vargrad)):
        measure(f"{label} ({samples} samples)", lambda v, m=method: m(model, v, predicted[id(v)], samples=samples, **common),
                few, samples, roof, fb)
    measure(f"SmoothGrad over IG ({ig_samples} samples x {ig_steps} steps)",
            lambda v: xg.smoothgrad(model, v, predicted[id(v)], base="integrated_gradients", samples=ig_samples,
                                    steps=ig_steps, **common),
            few, ig_samples * ig_steps, roof, fb)
    measure(f"expected gradients ({eg_samples} samples)",
            lambda v: xg.expected_gradients(model, v, predicted[id(v)], references=references, samples=eg_samples, **common),
            few, eg_samples, roof, fb)
    measure("IG, blur baseline (32 steps)", lambda v: xu.integrated_gradients(model, v, predicted[id(v)], baseline="blur", **common),
            few, 32, roof, fb)
    measure(f"IG, uniform baseline ({draws} draws x 32 steps)",
            lambda v: xu.integrated_gradients(model, v, predicted[id(v)], baseline="uniform", baseline_samples=draws,
                                              value_range=value_range, **common), few, 32 * draws, roof, fb)
    measure("Grad-CAM++", lambda v: xc.grad_cam_plus_plus(model, v, predicted[id(v)], **common), x, 1, roof, fb)
    channels = int(xu.find_layer(model).output.shape[-1])
    forward = forward_roofline(model, x, batch)
    rows["roofline (forward only), inputs/s"] = forward
    measure(f"Score-CAM ({channels} channels)", lambda v: xc.score_cam(model, v, predicted[id(v)], **common), few, channels,
            forward, "forward-only")

    # the completeness gap per baseline (xu.completeness_gap: F(x') is the mean over a baseline's draws,
    # or over the reference set for expected gradients, which meets it in expectation only)
    xs = x[: (4 if quick else 16) if two_d else (64 if quick else 256)]
    for baseline in xu.IG_BASELINES:
        options = dict(baseline=baseline, value_range=value_range, baseline_samples=draws)
        attributions = xu.integrated_gradients(model, xs, **options, **common)
        _, relative = xu.completeness_gap(model, xs, attributions, **options, batch_size=batch)
        rows[f"IG completeness, {baseline} baseline (32 steps), median relative gap"] = float(np.median(relative))
    attributions = xg.expected_gradients(model, xs, references=references, samples=eg_samples, **common)
    _, relative = xu.completeness_gap(model, xs, attributions, references=references, batch_size=batch)
    rows[f"expected gradients completeness ({eg_samples} samples), median relative gap"] = float(np.median(relative))

    # batch_size 64 for every one: each call holds about 64 inputs whatever the samples or steps, so
    # the two peaks of a method should agree (memory bounded by batch_size, flat in samples and steps)
    for label, call in memory_calls(quick, mem_n)[2:]:
        rows[f"{label}: peak memory above the forward pass, batch_size 64, {mem_n} examples (MiB)"] = \
            peak_memory(name, call, mem_n)
    return rows


def memory_calls(quick: bool, mem_n: int) -> list[tuple[str, str]]:
    """The calls whose peak memory is measured: IG at two step counts, then the gradient family, each
    at two sample or step counts with batch_size 64 (each call holds about 64 inputs whatever the
    samples or steps, so the two peaks of a method should agree: memory bounded by batch_size)."""
    calls = [(f"IG, {s} steps, {mem_n} examples", f"xu.integrated_gradients(model, x, steps={s}, progress=False)")
             for s in (32, 128)]
    calls += [(f"SmoothGrad, {m} samples", f"xg.smoothgrad(model, x, samples={m}, batch_size=64, progress=False)")
              for m in ((5, 20) if quick else (10, 50))]
    calls += [(f"SmoothGrad over IG, 4 samples x {s} steps", "xg.smoothgrad(model, x, base='integrated_gradients', "
               f"samples=4, steps={s}, batch_size=64, progress=False)") for s in ((4, 16) if quick else (8, 32))]
    calls += [(f"expected gradients, {m} samples", "xg.expected_gradients(model, x, references=references, "
               f"samples={m}, batch_size=64, progress=False)") for m in ((10, 40) if quick else (50, 200))]
    return calls


def bench_road(repeat=5):
    """ROAD's noisy linear imputation of one 150 x 150 x 3 tile: seconds by share of pixels removed,
    for random pixels and for the top of a smooth map (one large connected region, the harder case)."""
    from scipy.ndimage import gaussian_filter

    import xai.metrics.removal as xm
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


def bench_road_batch(repeat=3, n=8):
    """ROAD's imputation of ``n`` tiles, half their pixels removed (the top of a smooth map each):
    seconds with one thread and with one per core (the examples' systems solved at once)."""
    from scipy.ndimage import gaussian_filter

    import xai.metrics.removal as xm
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (n, 150, 150, 3)).astype(np.float32)
    smooth = np.stack([gaussian_filter(rng.random((150, 150)), 12) for _ in range(n)])
    removed = smooth > np.median(smooth.reshape(n, -1), axis=1)[:, None, None]
    cores = xm.usable_cores()
    one = timed(lambda: xm.road_impute(x, removed, threads=1), repeat=repeat)
    every = timed(lambda: xm.road_impute(x, removed), repeat=repeat)
    return n, cores, one, every


def main():
    warnings.filterwarnings("ignore", message=".*structure of `inputs`.*")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", nargs="+", default=["MNIST1D", "HMT"])
    parser.add_argument("--road-only", action="store_true", help="only the ROAD imputation benchmark")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the peak memory rows (TensorFlow's allocator) of every method")
    parser.add_argument("--families-only", action="store_true",
                        help="only the gradient family and the CAMs against their rooflines (and their memory)")
    args = parser.parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    print(f"# bench_xai, {datetime.date.today()}: TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"GPUs: {[g.name for g in gpus] or 'none'}\n")
    if args.memory_only:
        for name in args.models:
            two_d = name == "HMT"
            mem_n = (8 if two_d else 200) if args.quick else (32 if two_d else 1000)
            print(f"## {name}: peak memory of TensorFlow's allocator above the forward pass, {mem_n} examples\n\n"
                  "| call | MiB |\n|---|---|")
            for label, call in memory_calls(args.quick, mem_n):
                print(f"| {label} | {peak_memory(name, call, mem_n):.1f} |", flush=True)
            print()
        return
    if args.families_only:
        for name in args.models:
            model, x = load(name)
            two_d = x.ndim == 4
            n = (16 if two_d else 64) if args.quick else (128 if two_d else 1000)
            references, x = x[-64:], x[:n]
            batch = 128 if two_d else 1024
            mem_n = (8 if two_d else 200) if args.quick else (32 if two_d else 1000)
            rows = gradient_family(name, model, x, references, batch, roofline(model, x, batch), args.quick, mem_n)
            print(f"## {name}: the gradient family and the CAMs\n\n| measure | value |\n|---|---|")
            for k, v in rows.items():
                print(f"| {k} | {v:.3g} |" if isinstance(v, float) else f"| {k} | {v} |")
            print(flush=True)
        return
    print("## ROAD imputation, one 150 x 150 x 3 tile (seconds, best of 5)\n")
    print("| pixels removed | random pixels | top of a smooth map (one region) |\n|---|---|---|")
    for share, t_random, t_region in bench_road(repeat=2 if args.quick else 5):
        print(f"| {share:.0%} | {t_random:.3f} | {t_region:.3f} |")
    print(flush=True)
    n, cores, one, every = bench_road_batch(repeat=2 if args.quick else 3, n=4 if args.quick else 8)
    print(f"## ROAD imputation, {n} tiles, half of each removed (seconds, best of {2 if args.quick else 3})\n\n"
          f"| one thread | {cores} threads (one per core) | speed-up |\n|---|---|---|\n"
          f"| {one:.3f} | {every:.3f} | {one / every:.2f}× |\n", flush=True)
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
