"""What reflect padding costs a training step of the HMT network, with and without XLA.

    .venv/bin/python benchmarks/bench_training_step.py            # prints Markdown for BENCHMARKS.md
    .venv/bin/python benchmarks/bench_training_step.py --quick    # 2 timed steps: a smoke run

The network of ``hmt_utils.build_model`` on random 112 x 112 crops (the recipe's training crop),
batch 32, AdamW and cross-entropy as ``xai.training.train.fit`` compiles them: valid convolutions
with a 3 x 3 stem (the committed recipe) against reflect padding with a 4 x 4 stem, each compiled
without XLA (Keras's ``jit_compile="auto"`` on a CPU) and with it. Reflect padding is built from
Keras's own layers (``xai.training.padding``: loads anywhere), about twenty elementwise layers a
pad: on a CPU without XLA each is a pass over the feature map; XLA fuses them. The median of the
timed steps after two warm-up steps.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

CASES = (("valid", 3, False), ("valid", 3, True), ("reflect", 4, False), ("reflect", 4, True))


def step_seconds(padding: str, stem: int, jit: bool, steps: int) -> float:
    import keras

    import hmt_utils as hmt
    x = np.random.default_rng(0).uniform(0, 255, (32, 112, 112, 3)).astype(np.float32)
    y = np.eye(8, dtype=np.float32)[np.arange(32) % 8]
    model = hmt.build_model(padding=padding, stem_kernel=stem, input_shape=(None, None, 3))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy", jit_compile=jit)
    for _ in range(2):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def multiply_adds(padding: str, stem: int, side: int = 112) -> int:
    """The network's multiply-adds for one side x side crop (forward): each convolution's output
    positions x kernel area x input channels x output channels, plus the classifier. Reflect padding
    keeps each block's maps at their size where valid convolutions shrink them, so the wide third
    block works on 14 x 14 maps instead of 8 x 8 and 6 x 6."""
    import keras

    import hmt_utils as hmt
    from xai.layers import all_layers
    model = hmt.build_model(padding=padding, stem_kernel=stem, input_shape=(side, side, 3))
    total = 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c_out = layer.output.shape
            total += h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    import tensorflow as tf
    steps = 2 if args.quick else 15
    found = {case: step_seconds(*case, steps) for case in CASES}
    base = found[("valid", 3, False)]
    lines = [f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"TensorFlow {tf.__version__}; batch 32 of 112 x 112 crops, median of {steps} steps", "",
             "| network | XLA | ms a step | against the committed recipe | M multiply-adds a crop (forward) |",
             "| --- | --- | --- | --- | --- |"]
    for (padding, stem, jit), seconds in found.items():
        lines.append(f"| {padding}, {stem} x {stem} stem | {'yes' if jit else 'no'} | {1000 * seconds:.0f} | "
                     f"{seconds / base:.2f}× | {multiply_adds(padding, stem) / 1e6:.0f} |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
