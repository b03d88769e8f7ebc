"""Which metrics agree: every method of METHODS scored by every metric the repository has, and
Kendall's tau between the metrics' rankings of the methods (``xai.analysis.metric_agreement``).

    python tools/metric_agreement.py                    # MNIST-1D metrics + the planted-shortcut AUROCs
    python tools/metric_agreement.py --report-only      # the sentences and the figure again from the record
    python tools/metric_agreement.py --quick --out /tmp/ma

Metrics (each a ranking of the 13 methods, each method with its library defaults; RISE with the
notebook's 2000 masks, expected gradients from 64 training examples):
- MNIST-1D, on the test set (the committed model's predicted class): ROAD's MoRF, LeRF and SRG
  (10 % steps, noise 1 % of the range), the average drop and the increase in confidence (the
  removal family: the same examples, resampled together), relevance mass and the pointing game
  of |map| against the digit's mask;
- the sanity checks, from ``tools/randomisation_checks.py``'s records of the committed models
  (``models/randomisation_<data>.json``; left out, with a message, where missing or stale): the plain
  cascade and sMPRT (correlation after randomisation; lower is better) and eMPRT (the entropy ratio;
  higher is better);
- GridPG on HMT from ``tools/hmt_gridpg.py``'s record (a grid's cells averaged: grids as units);
- the planted shortcuts' detection AUROC, per setting with reliant models and controls (MNIST-1D
  local, HMT local and hue), from the committed records (``models/shortcut/runs``), with their
  own bootstrap over models and inputs.

Writes ``<out>/models/metric_agreement.json``: each metric's methods, means oriented so that higher
is better (``mean_higher_is_better``: lower-is-better metrics negated), units and n; the tau matrix
with its intervals and shared method counts;
the long sentence (every opposite pair) and the README's (``readme_sentence``); the command and the time.
Draws ``<out>/figures/xai_metric_agreement.png`` (the matrix the README shows).
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

RISE_MASKS, N_REFERENCES = 2000, 64
REMOVAL = ("morf_auc", "lerf_auc", "srg", "drop", "increase")
LOCALISATION = ("relevance_mass", "pointing")


def mnist1d_metrics(args) -> dict:
    """Every method's per-example scores on MNIST-1D: ``{metric label: agreement entry}``."""
    import keras

    import mnist1d_utils as m1d
    from xai.analysis.compare import compare_methods, draw_references, every_method
    from xai.methods import METHODS
    from xai.metrics import METRICS
    data = m1d.make_dataset()
    n = 40 if args.quick else args.n
    x, gt = data["x_test"][..., None].astype(np.float32)[:n], data["mask_test"][:n]
    model = keras.models.load_model(os.path.join(_REPO, "models", "MNIST1D.keras"))
    classes = model.predict(x, verbose=0).argmax(-1)
    explain = every_method(draw_references(data["x"][..., None], N_REFERENCES), rise_masks=100 if args.quick else RISE_MASKS,
                           eg_samples=8 if args.quick else 64, noise_samples=4 if args.quick else None, key="name")
    maps = {}
    for name in METHODS:
        began = time.perf_counter()
        maps[name] = explain[name](model, x, classes)
        print(f"MNIST-1D {name}: {time.perf_counter() - began:.1f} s", flush=True)
    span = float(data["x_test"].max() - data["x_test"].min())
    results = compare_methods(model, x, maps, classes, masks=gt, road_steps=4 if args.quick else 10, noise_std=0.01,
                              noise_scale=span, seed=0)
    out = {}
    for key in REMOVAL + LOCALISATION:
        out[f"{METRICS[key].name} (MNIST-1D)"] = {
            "scores": {METHODS[m].label: results[m][key] for m in METHODS}, "higher_is_better": METRICS[key].higher_is_better,
            "units": "MNIST-1D examples"}                    # one set of examples: resampled together
    return out


def randomisation_metrics(out_dir: str) -> dict:
    """The sanity checks of every method from ``tools/randomisation_checks.py``'s records (MNIST-1D,
    HMT), where they explain the committed model: the plain cascade, eMPRT and sMPRT, per example."""
    from xai.analysis.sweep_store import file_sha1
    out = {}
    for data, label in (("mnist1d", "MNIST-1D"), ("hmt", "HMT")):
        path = os.path.join(out_dir, "models", f"randomisation_{data}.json")
        if not os.path.isfile(path):
            print(f"no {path}: run tools/randomisation_checks.py --data {data} for its sanity metrics", flush=True)
            continue
        with open(path) as f:
            record = json.load(f)
        if record["model_sha1"] != file_sha1(os.path.join(_REPO, record["model"])):
            print(f"{path} explains another model than {record['model']}: left out (run the tool again)", flush=True)
            continue
        for test, (name, higher) in {"cascade": ("sanity cascade", False), "emprt": ("eMPRT", True),
                                     "smprt": ("sMPRT", False)}.items():
            out[f"{name} ({label})"] = {
                "scores": {m: np.array([np.nan if v is None else v for v in e[test]], float)
                           for m, e in record["per_example"].items()},
                "higher_is_better": higher, "units": f"{label} sanity examples"}
    return out


def gridpg_metrics(out_dir: str) -> dict:
    """GridPG's cell shares from ``tools/hmt_gridpg.py``'s record (each row: the course tiles with the
    committed model, held-out slides with the fold models), grids as units (a grid's cells averaged),
    where the record explains the committed HMT model."""
    from xai.analysis.summaries import current_record
    record, why = current_record(os.path.join(out_dir, "models", "hmt_gridpg.json"),
                                 {"models.committed": os.path.join(_REPO, "models", "HMT.keras")}, "python tools/hmt_gridpg.py")
    if record is None:
        print(why, flush=True)
        return {}
    out = {}
    for row, entry in record["rows"].items():
        grids = {}
        for m, shares in entry["scores"].items():
            c = np.array([np.nan if v is None else v for v in shares], float).reshape(-1, 4)   # (G, 4 cells)
            counts = np.isfinite(c).sum(1)
            grids[m] = np.where(counts > 0, np.where(np.isfinite(c), c, 0).sum(1) / np.maximum(counts, 1), np.nan)
        out[f"GridPG (HMT, {row})"] = {"scores": grids, "higher_is_better": True, "units": f"HMT grids, {row}"}
    return out


def shortcut_metrics(n_boot: int) -> dict:
    """The planted shortcuts' detection AUROC per setting, from the committed records."""
    from xai.methods import METHODS
    from xai.shortcut.benchmark import SETTINGS
    from xai.shortcut.report import detection_draws, load_records
    out = {}
    for name, setting in SETTINGS.items():
        found = detection_draws(setting, load_records(_REPO, setting), n_boot=n_boot)
        if found:
            label = {m: METHODS[m].label for m in found["point"]}
            out[f"shortcut detection AUROC ({name})"] = {
                "point": {label[m]: v for m, v in found["point"].items()},
                "replicates": {label[m]: v for m, v in found["replicates"].items()},
                "higher_is_better": True, "n": found["n"]}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="MNIST-1D test examples (default: all 1000)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="smoke run: 40 examples, few masks and draws")
    p.add_argument("--out", default=None, help="folder holding models/ (default: the repository; required with --quick)")
    p.add_argument("--report-only", action="store_true", help="rewrite the sentences and the figure from the saved record")
    args = p.parse_args(argv)
    if args.quick and args.out is None:
        p.error("--quick needs --out FOLDER")
    out_dir = args.out or _REPO
    path = os.path.join(out_dir, "models", "metric_agreement.json")
    if args.report_only:
        if not os.path.isfile(path):
            p.error(f"--report-only needs a record at {path}: run the tool without it first")
        with open(path) as f:
            record = json.load(f)
        return _report(record, path, out_dir)
    from xai.analysis.metric_agreement import agreement_matrix
    from xai.analysis.sweep_store import file_sha1
    start = time.perf_counter()
    metrics = mnist1d_metrics(args)
    metrics.update(randomisation_metrics(_REPO))
    metrics.update(gridpg_metrics(_REPO))
    metrics.update(shortcut_metrics(200 if args.quick else args.n_boot))
    result = agreement_matrix(metrics, n_boot=200 if args.quick else args.n_boot, seed=0)
    record = {"command": "python tools/metric_agreement.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "metrics": result["metrics"], **{k: json_ready(np.asarray(result[k], float)) for k in ("tau", "low", "high")},
              "shared": result["shared"].tolist(),
              "undefined_draws": result["undefined_draws"].tolist(),
              "per_metric": {name: {"methods": s["methods"], "mean_higher_is_better": [float(v) for v in s["point"]], "n": s["n"],
                                    "higher_is_better": metrics[name]["higher_is_better"],
                                    "units": metrics[name].get("units", name)}
                             for name, s in result["statistics"].items()},
              "models": {data: file_sha1(os.path.join(_REPO, "models", name)) for data, name in
                         (("mnist1d", "MNIST1D.keras"), ("hmt", "HMT.keras"))
                         if data == "mnist1d" or any("(HMT" in m for m in result["metrics"])},
              "n_boot": args.n_boot, "quick": args.quick, "seconds": round(time.perf_counter() - start, 1),
              "versions": library_versions()}
    return _report(record, path, out_dir)


def _report(record: dict, path: str, out_dir: str) -> dict:
    """The record's sentences (from its matrix), written atomically, and its figure."""
    import matplotlib
    matplotlib.use("Agg")
    from xai.analysis.metric_agreement import agreement_sentence, plot_agreement, readme_sentence
    from xai.analysis.summaries import agreement_from_record
    from xai.plots import save_figure
    result = agreement_from_record(record)
    record.update(sentence=agreement_sentence(result), readme_sentence=readme_sentence(result))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(record, f, indent=1, allow_nan=False)
        f.write("\n")
    figure = save_figure(plot_agreement(result), os.path.join(out_dir, "figures", "xai_metric_agreement.png"))
    print(record["readme_sentence"], f"({record['seconds'] / 60:.1f} min) -> {path}, {figure}")
    return record


if __name__ == "__main__":
    main()
