"""GPU check (``make gpu-check``): the same explanations on the CPU and on the GPU, and the GPU's speed.

    .venv/bin/python benchmarks/gpu_check.py             # on a GPU machine: about 3-5 minutes
    .venv/bin/python benchmarks/gpu_check.py --dry-run   # a short CPU-only run of the same code

On a GPU it prints the devices, then for both committed models:
- every method of ``xai.methods.METHODS`` (seeded where random), IG's own gap (``return_delta=True``)
  and IG from a blurred baseline, on the CPU and on the GPU, with the same inputs, and the maximum
  relative difference per method, max|gpu - cpu| / max|cpu| per
  example, with TensorFloat-32 on (the default on Ampere and Hopper) and off;
- IG's completeness gap on the GPU;
- throughput against the forward + backward roofline, and Grad-CAM and RISE against their naive
  loops (``bench_xai.py``'s references);
- TensorFlow's peak GPU memory.
Without a GPU it says so and runs the same code on the CPU alone with small sizes (CPU against CPU),
so CI exercises it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_xai import load, naive_grad_cam, naive_rise, roofline, timed  # noqa: E402

from xai.core import predict_scores
from xai.layers import find_layer
from xai.methods import METHODS, method_function  # noqa: E402
from xai.methods.cam import grad_cam  # noqa: E402
from xai.methods.integrated_gradients import completeness_gap, integrated_gradients  # noqa: E402
from xai.methods.perturbation import rise  # noqa: E402

GOAL = 1e-4          # Grad-CAM and IG in float32: max relative difference between CPU and GPU


# Options a method takes in this check besides the common ones (seeds, fewer draws); every method of METHODS runs,
# with its defaults where it has no entry here.
OPTIONS = {"rise": lambda x, masks: {"n_masks": masks, "seed": 0},
           "expected_gradients": lambda x, masks: {"references": x, "samples": 16, "seed": 0},
           **{name: (lambda x, masks: {"samples": 10, "seed": 0})
              for name in ("smoothgrad", "smoothgrad_squared", "vargrad", "noise_tunnel")}}


def explain(model, x, classes, rise_masks, batch):
    """Every method of METHODS on the current device, and IG from a blurred baseline and IG's own
    completeness gap: {name: array}."""
    common = dict(batch_size=batch, progress=False)
    maps = {METHODS[name].label: method_function(name)(model, x, classes, **OPTIONS.get(name, lambda *_: {})(x, rise_masks),
                                                        **common)
            for name in METHODS}
    _, maps["IG delta"] = integrated_gradients(model, x, classes, return_delta=True, **common)
    maps["IG blur"] = integrated_gradients(model, x, classes, baseline="blur", **common)
    return maps


COMPARED = tuple(m.label for m in METHODS.values()) + ("IG blur",)


def max_relative_difference(a, b) -> float:
    """max over examples of max|a - b| / max|b| (the map's own scale), in float64."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    scale = np.maximum(np.abs(b).max(1), 1e-12)
    return float((np.abs(a - b).max(1) / scale).max())


def load_on(device, name, n):
    """The committed model and n test inputs, the model's variables placed on ``device``."""
    with tf.device(device):
        model, x = load(name)
    return model, x[:n]


def check_model(name, gpu, dry_run):
    two_d = name == "HMT"
    n = (4 if two_d else 16) if dry_run else (32 if two_d else 256)
    rise_masks = 100 if dry_run else 1000
    batch = 64 if two_d else 512
    print(f"\n## {name}: {n} test inputs, RISE with {rise_masks} masks, batch {batch}\n")
    cpu_model, x = load_on("/CPU:0", name, n)
    classes = predict_scores(cpu_model, x).argmax(-1)
    with tf.device("/CPU:0"):
        reference = explain(cpu_model, x, classes, rise_masks, batch)
    device = "/GPU:0" if gpu else "/CPU:0"
    rows = []
    for tf32 in ((True, False) if gpu else (False,)):
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
        model, _ = load_on(device, name, n)                 # a fresh object: fresh compiled steps
        with tf.device(device):
            maps = explain(model, x, classes, rise_masks, batch)
        diffs = {k: max_relative_difference(maps[k], reference[k]) for k in COMPARED}
        rows.append((tf32, diffs, maps))
    tf.config.experimental.enable_tensor_float_32_execution(True)
    print("| TF32 | " + " | ".join(f"{k} max rel. diff" for k in rows[0][1]) + " | Grad-CAM and IG ≤ 1e-4 |")
    print("|---|" + "---|" * (len(rows[0][1]) + 1))
    for tf32, diffs, _ in rows:
        ok = diffs["Grad-CAM"] <= GOAL and diffs["IG"] <= GOAL
        print(f"| {'on' if tf32 else 'off'} | " + " | ".join(f"{v:.1e}" for v in diffs.values())
              + f" | {'yes' if ok else 'no'} |")
    maps = rows[-1][2]
    _, gap = completeness_gap(cpu_model, x, maps["IG"], classes)      # the one definition of the gap
    print(f"\nIG completeness on {'the GPU' if gpu else 'the CPU'} (TF32 off, 32 Gauss-Legendre steps): "
          f"median {np.median(gap):.1e}, max {gap.max():.1e}, share within 1 % {np.mean(gap <= 0.01):.3f}")

    model, _ = load_on(device, name, n)
    with tf.device(device):
        if gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")
        roof = roofline(model, x, batch)
        t_cam = timed(lambda: grad_cam(model, x, batch_size=batch, progress=False), repeat=2)
        t_ig = timed(lambda: integrated_gradients(model, x, batch_size=batch, progress=False), repeat=2)
        n_naive = 2 if dry_run else 8
        t_naive_cam = timed(lambda: naive_grad_cam(model, x[:n_naive], find_layer(model).name), repeat=1)
        t_rise = timed(lambda: rise(model, x[:1], n_masks=rise_masks, batch_size=batch, progress=False), repeat=1)
        loop_masks = min(rise_masks, 50 if dry_run else 200)
        start = time.perf_counter()
        naive_rise(model, x[0], loop_masks)
        t_loop = (time.perf_counter() - start) * rise_masks / loop_masks
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if gpu else None
    ig_inputs = n * 32 / t_ig
    print("\n| measure | value |\n|---|---|")
    print(f"| roofline (forward + backward), inputs/s | {roof:.4g} |")
    print(f"| Grad-CAM, examples/s | {n / t_cam:.4g} |")
    print(f"| IG (32 steps), inputs/s; share of the roofline | {ig_inputs:.4g}; {ig_inputs / roof:.2f} |")
    print(f"| Grad-CAM speed-up over the naive loop | {(n / t_cam) / (n_naive / t_naive_cam):.1f}x |")
    print(f"| RISE ({rise_masks} masks) speed-up over the per-mask loop | {t_loop / t_rise:.1f}x |")
    print(f"| peak GPU memory (TensorFlow's allocator), MiB | {'-' if peak is None else f'{peak:.0f}'} |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU only, small sizes, even with a GPU")
    args = parser.parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    print(f"# gpu_check: TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print("devices:", [d.name for d in tf.config.list_logical_devices()])
    for g in gpus:
        details = tf.config.experimental.get_device_details(g)
        print(f"GPU {g.name}: {details.get('device_name', '?')}, compute capability {details.get('compute_capability')}")
    gpu = bool(gpus) and not args.dry_run
    if not gpu:
        print("no GPU" + (" used (--dry-run)" if gpus else " visible to TensorFlow")
              + ": a short CPU-only dry run of the same code (CPU against CPU)")
    start = time.perf_counter()
    for name in ("MNIST1D", "HMT"):
        check_model(name, gpu, dry_run=not gpu)
    print(f"\ngpu_check took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
