"""The model-randomisation sanity checks for every method of METHODS, on MNIST-1D or HMT: the plain
cascade (Adebayo et al. 2018, top layer first), eMPRT and sMPRT (Hedström et al. 2024), on the same
examples and classes, and where the plain test and its repairs disagree.

    python tools/randomisation_checks.py --data mnist1d            # 100 test examples, about 10 min
    python tools/randomisation_checks.py --data hmt                # 16 test tiles (2 a class)
    python tools/randomisation_checks.py --data mnist1d --quick --out /tmp/rc

Per method and example: the cascade's Spearman between the trained model's |map| and the fully
randomised one's (``cascade``; lower is better), eMPRT's entropy ratio of the randomised maps to the
trained ones (``emprt``; higher is better: above 1 the maps grow more complex once the model is
destroyed), and sMPRT's correlation after the bottom-up cascade of maps averaged over noisy inputs
(``smprt``; lower is better). Verdicts, stated so that they can be checked: a method passes the
cascade or sMPRT when the 95 % bootstrap interval of its mean correlation lies below 0.5, and passes
eMPRT when the interval of its mean ratio lies above 1. ``disagree`` lists the methods whose plain
verdict differs from eMPRT's or sMPRT's; ``agreement`` is Kendall's tau between the three rankings of
the methods (``xai.analysis.metric_agreement``, the examples resampled together). A map that is
constant (e.g. Grad-CAM's, once its ReLU zeroes a randomised layer) correlates 0 with any other:
it passes the cascade and sMPRT by convention, while eMPRT has no ratio for a constant trained map
(left out: its ``n`` in the summary counts the examples with a ratio) and a ratio of 0 for a
constant randomised one, so a disagreement on such a method can come from the conventions.

Writes ``<out>/models/randomisation_<data>.json`` (per-example values, the summaries, the command,
the model's hash and the time).
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

from xai.files import atomic_open, json_ready  # noqa: E402
from xai.training.saving import library_versions  # noqa: E402

PASS_CORRELATION, PASS_RATIO = 0.5, 1.0
LOWER_BETTER = {"cascade": True, "emprt": False, "smprt": True}


def _examples(data: str, n: int, quick: bool):
    """The model, the examples, their predicted classes, the training inputs and the value range."""
    import keras

    from xai.analysis.stats import stratified_sample
    if data == "mnist1d":
        import mnist1d_utils as m1d
        d = m1d.make_dataset()
        model = keras.models.load_model(os.path.join(_REPO, "models", "MNIST1D.keras"))
        x, train = d["x_test"][..., None].astype(np.float32)[:n], d["x"][..., None].astype(np.float32)
        value_range = (float(d["x"].min()), float(d["x"].max()))
        path = os.path.join(_REPO, "models", "MNIST1D.keras")
    else:
        import hmt_utils as hmt
        (train, _), (x_test, y_test), names = hmt.load_hmt(None, progress=False)
        path = os.path.join(_REPO, "models", "HMT.keras")
        model = keras.models.load_model(path)
        x = x_test[stratified_sample(y_test, max(1, n // len(names)), 0, n_classes=len(names))].astype(np.float32)
        value_range = (0.0, 255.0)
    classes = model.predict(x, verbose=0).argmax(-1)
    return model, path, x, classes, train, value_range


def _functions(train, quick: bool, rise_masks: int) -> dict:
    from xai.analysis.compare import draw_references, every_method
    return every_method(draw_references(train, 32), rise_masks=60 if quick else rise_masks, eg_samples=4 if quick else 32,
                        noise_samples=3 if quick else None)


def _interval(values, higher_pass: bool, threshold: float, n_boot: int) -> dict:
    from xai.analysis.stats import paired_bootstrap
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]                                   # eMPRT: no ratio where a trained map is constant
    ci = paired_bootstrap(v, np.zeros_like(v), n_boot=n_boot, seed=0)
    passed = ci["low"] > threshold if higher_pass else ci["high"] < threshold
    return {"mean": float(v.mean()), "low": ci["low"], "high": ci["high"], "n": int(len(v)), "passes": bool(passed)}


def run(args) -> dict:
    from xai.analysis.metric_agreement import agreement_matrix, agreement_sentence
    from xai.analysis.sweep_store import file_sha1
    from xai.metrics.sanity import cascading_randomization, efficient_randomization, smooth_randomization
    n = 4 if args.quick else args.n
    model, path, x, classes, train, value_range = _examples(args.data, n, args.quick)
    functions = _functions(train, args.quick, args.rise_masks)
    per_example, summary, seconds = {}, {}, {}
    for label, f in functions.items():
        began = time.perf_counter()
        cascade = cascading_randomization(model, x, f, class_index=classes, seed=0)["correlation"][-1]
        emprt = efficient_randomization(model, x, f, class_index=classes, seed=0)["ratio"]
        smprt = smooth_randomization(model, x, f, class_index=classes, seed=0, samples=2 if args.quick else args.samples,
                                     noise=0.1, value_range=value_range)["correlation"][-1]
        seconds[label] = round(time.perf_counter() - began, 1)
        per_example[label] = {"cascade": cascade.tolist(), "emprt": json_ready(np.asarray(emprt, float)),
                              "smprt": smprt.tolist()}
        summary[label] = {"cascade": _interval(cascade, False, PASS_CORRELATION, args.n_boot),
                          "emprt": _interval(emprt, True, PASS_RATIO, args.n_boot),
                          "smprt": _interval(smprt, False, PASS_CORRELATION, args.n_boot)}
        print(f"{args.data} {label}: cascade {summary[label]['cascade']['mean']:.3f}, eMPRT "
              f"{summary[label]['emprt']['mean']:.3f}, sMPRT {summary[label]['smprt']['mean']:.3f} ({seconds[label]} s)",
              flush=True)
    disagree = {test: [m for m, s in summary.items() if s["cascade"]["passes"] != s[test]["passes"]]
                for test in ("emprt", "smprt")}
    metrics = {test: {"scores": {m: np.array([np.nan if v is None else v for v in per_example[m][test]], float)
                                 for m in per_example},
                      "higher_is_better": not LOWER_BETTER[test], "units": "examples"} for test in LOWER_BETTER}
    agreement = agreement_matrix(metrics, n_boot=min(args.n_boot, 1000), seed=0)
    return {"data": args.data, "n": int(len(x)), "classes": classes.tolist(), "model": os.path.relpath(path, _REPO),
            "model_sha1": file_sha1(path), "thresholds": {"correlation_below": PASS_CORRELATION, "ratio_above": PASS_RATIO},
            "summary": summary, "disagree": disagree, "per_example": per_example, "seconds": seconds,
            "agreement": {"metrics": agreement["metrics"],
                          **{k: json_ready(np.asarray(agreement[k], float)) for k in ("tau", "low", "high")},
                          "sentence": agreement_sentence(agreement)},
            "smprt_samples": 2 if args.quick else args.samples, "rise_masks": args.rise_masks, "quick": args.quick}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("mnist1d", "hmt"), required=True)
    p.add_argument("--n", type=int, default=None, help="examples (default: MNIST-1D 100, HMT 16: 2 a class)")
    p.add_argument("--samples", type=int, default=None, help="sMPRT's noisy copies (default: MNIST-1D 20, HMT 5)")
    p.add_argument("--rise-masks", type=int, default=500, help="RISE's masks inside the checks (the notebook's 500)")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="smoke run: 4 examples (HMT: 1 a class), few masks and draws")
    p.add_argument("--out", default=None, help="folder holding models/ (default: the repository; required with --quick)")
    args = p.parse_args(argv)
    if args.quick and args.out is None:
        p.error("--quick needs --out FOLDER")
    args.n = args.n or (100 if args.data == "mnist1d" else 16)
    args.samples = args.samples or (20 if args.data == "mnist1d" else 5)
    start = time.perf_counter()
    record = dict(run(args), command="python tools/randomisation_checks.py " + " ".join(sys.argv[1:] if argv is None else argv),
                  versions=library_versions())
    record["seconds_total"] = round(time.perf_counter() - start, 1)
    path = os.path.join(args.out or _REPO, "models", f"randomisation_{args.data}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(record, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"disagree with the plain cascade: eMPRT {record['disagree']['emprt']}, sMPRT {record['disagree']['smprt']}; "
          f"{record['agreement']['sentence']} ({record['seconds_total'] / 60:.1f} min) -> {path}")
    return record


if __name__ == "__main__":
    main()
