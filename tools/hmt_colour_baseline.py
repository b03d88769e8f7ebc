"""The colour baseline on HMT (``xai.training.colour_baseline``): how much of the CNN's accuracy
colour alone explains, on the course split and with each slide held out in turn, on the CNN's
own folds (``models/hmt_slide_cv.json``).

    python tools/hmt_colour_baseline.py            # writes models/hmt_colour_baseline.json (about a minute)
    python tools/hmt_colour_baseline.py --out /tmp/cb --quick

Intervals as the slide CV's: the slide-resampled bootstrap across slides (the one to read) and
Wilson on the course split's 496 tiles (which share source images with training).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from xai.analysis.stats import wilson  # noqa: E402
from xai.files import atomic_open  # noqa: E402
from xai.training.colour_baseline import BINS, colour_features, fit_predict, slide_cv_predictions  # noqa: E402
from xai.training.saving import library_versions  # noqa: E402
from xai.training.slides import INTERVAL_NOTES, accuracy_block, pooled_tiles  # noqa: E402


def summarise(y, slides, predicted, class_names, n_boot: int, seed: int) -> dict:
    """Pooled accuracy across slides (with and without ``empty``, which two slides carry), per class."""
    correct = predicted == y
    empty = y == class_names.index("empty")
    return {"pooled": accuracy_block(correct, slides, n_boot, seed),
            "pooled_without_empty": accuracy_block(correct[~empty], slides[~empty], n_boot, seed),
            "per_class": {name: accuracy_block(correct[y == c], slides[y == c], n_boot, seed)
                          for c, name in enumerate(class_names)}}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="HMT folder (default: $HMT_DIR or data/hmt)")
    p.add_argument("--cv", default=os.path.join(_REPO, "models", "hmt_slide_cv.json"), help="the slide CV whose folds to use")
    p.add_argument("--out", default=_REPO, help="folder holding models/ (default: the repository)")
    p.add_argument("--quick", action="store_true", help="smoke run: 30 training and 10 test tiles a slide")
    p.add_argument("--n-boot", type=int, default=2000)
    args = p.parse_args(argv)
    import hmt_utils as hmt
    start = time.perf_counter()
    with open(args.cv) as f:
        folds = json.load(f)["folds_of_slides"]
    x, y, groups, is_test = pooled_tiles(args.data, progress=False)
    slides = groups.slide
    if args.quick:
        rng = np.random.default_rng(0)
        keep = np.concatenate([rng.permutation(np.flatnonzero((slides == s) & (is_test == t)))[:10 if t else 30]
                               for s in np.unique(slides) for t in (False, True)])
        x, y, slides, is_test = x[keep], y[keep], slides[keep], is_test[keep]
    features = colour_features(x)
    predicted = slide_cv_predictions(features, y, slides, folds)
    course = fit_predict(features[~is_test], y[~is_test], features[is_test]).argmax(1) == y[is_test]
    names = list(hmt.CLASS_NAMES)
    record = {"command": "python tools/hmt_colour_baseline.py" + (" --quick" if args.quick else ""),
              "features": f"per-tile histograms of R, G, B and the H, E, DAB stains ({BINS} bins each) and each "
                          "channel's mean and standard deviation", "classifier": "logistic regression, standardised",
              "folds_of_slides": folds, "cv": os.path.relpath(args.cv, _REPO) if args.cv.startswith(_REPO) else args.cv,
              "n_tiles": int(len(y)), "quick": args.quick,
              "slide_held_out": summarise(y, slides, predicted, names, args.n_boot, 0),
              "course_split": {"n": int(course.size), "correct": int(course.sum()), "accuracy": float(course.mean()),
                               "wilson95": wilson(int(course.sum()), int(course.size))},
              "interval_notes": {k: INTERVAL_NOTES[k] for k in ("wilson95", "slide_bootstrap95")},
              "seconds": round(time.perf_counter() - start, 1), "versions": library_versions()}
    path = os.path.join(args.out, "models", "hmt_colour_baseline.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    s = record["slide_held_out"]
    print(f"colour baseline: slides held out {s['pooled']['accuracy']:.3f} {s['pooled']['slide_bootstrap95']}, without "
          f"empty {s['pooled_without_empty']['accuracy']:.3f}; course split {record['course_split']['accuracy']:.3f}; "
          f"{record['seconds']:.0f} s -> {path}")
    return record


if __name__ == "__main__":
    main()
