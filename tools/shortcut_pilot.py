"""Pilot a marker before the benchmark: does a model learn it, how fast, and is it neutral for a clean
model? Measured on the training data alone, so that choosing the marker never looks at the inputs the
benchmark scores (MNIST-1D's test split, HMT's held-out slides).

    python tools/shortcut_pilot.py mnist1d_local                         # the committed marker and schedule
    python tools/shortcut_pilot.py hmt_local --strength 24 --epochs 10   # another strength or schedule
    python tools/shortcut_pilot.py mnist1d_local --specs 1 0 clark       # p = 1, the clean model, the Clark control

The pilot's held-out part: MNIST-1D's last 20 % of the training examples (800); on HMT the training slide with the
most tiles of the marked class (the model trains on the other training slides). Each model's flip
rate, accuracy drop and best epoch are printed, and on HMT the flip rate after every epoch (on up to
256 held-out tiles of other classes): how short a schedule is enough. ``models/shortcut/PILOTS.md``
records the runs that chose the committed markers.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import xai.shortcut.markers as markers  # noqa: E402
from xai.shortcut import benchmark as sb  # noqa: E402
from xai.shortcut.scores import reliance  # noqa: E402


def pilot_bundle(setting, bundle: sb.Bundle) -> sb.Bundle:
    """The training data split into the pilot's training and held-out parts, the held-out part marked."""
    if setting.data == "mnist1d":
        out = np.arange(len(bundle.y_train)) >= len(bundle.y_train) - len(bundle.y_train) // 5   # the last 20 %
        groups = None
    else:
        import hmt_utils as hmt
        slides = bundle.groups.slide
        names, counts = np.unique(slides[bundle.y_train == setting.marked_class], return_counts=True)
        out = slides == names[np.argmax(counts)]
        groups = hmt.TileGroups(slides[~out], bundle.groups.source_image[~out])
    marked, mask = markers.add_marker(bundle.x_train[out], setting.kind, seed=5, margin=bundle.marker_margin)
    return sb.Bundle(bundle.x_train[~out], bundle.y_train[~out], bundle.x_train[out], bundle.y_train[out], marked, mask,
                     bundle.explain, bundle.references, "pilot", bundle.noise_scale, bundle.marker_margin, groups,
                     {"pilot": "training data only"}, bundle.data_args)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("setting", choices=sorted(sb.SETTINGS))
    p.add_argument("--strength", type=float, default=None, help="the marker's amplitude (default: the committed one)")
    p.add_argument("--epochs", type=int, default=None, help="the schedule (default: the setting's)")
    p.add_argument("--specs", nargs="+", default=["1"], help="p values and/or 'clark' (seed 0 each)")
    args = p.parse_args(argv)
    setting = sb.SETTINGS[args.setting]
    if args.epochs is not None:
        setting = replace(setting, epochs=args.epochs)
    if args.strength is not None:
        ndim = 3 if setting.data == "mnist1d" else 4
        markers.DEFAULT_STRENGTH[(setting.kind, ndim)] = args.strength
    bundle = pilot_bundle(setting, sb.load_bundle(setting))
    print(f"{setting.name}: strength {markers.DEFAULT_STRENGTH}, {setting.epochs} epochs; pilot: "
          f"{len(bundle.y_train)} training, {len(bundle.y_held)} held out", flush=True)
    for text in args.specs:
        spec = sb.ModelSpec(0.5, 0, control=True) if text == "clark" else sb.ModelSpec(float(text), 0)
        callbacks = [sb.flip_rate_callback(bundle, setting.marked_class)] if setting.data == "hmt" else []
        start = time.perf_counter()
        model, info = sb.train_spec(setting, spec, bundle, callbacks=callbacks)
        rel = reliance(model, bundle.x_held, bundle.x_held_marked, bundle.y_held, setting.marked_class)
        by_epoch = f"; flip rate by epoch {callbacks[0].rates}" if callbacks else ""
        print(f"{spec.model_id(setting)}: flip rate {rel['flip_rate']:.3f} (of {rel['flip_n']}), accuracy drop "
              f"{rel['accuracy_drop']:+.3f}, clean accuracy {rel['accuracy_clean']:.3f}, best epoch {info['best_epoch']} of "
              f"{setting.epochs}, {time.perf_counter() - start:.0f} s{by_epoch}", flush=True)
        by_class = {c: f"{k}/{n}" for c, (k, n) in rel["flip_rate_by_class"].items()}
        print(f"  flips by class (flipped/right): {by_class}", flush=True)


if __name__ == "__main__":
    main()
