"""The planted-shortcut benchmark: train the models of every setting with their marker, score each
(reliance, every method's mass on the marker, ROAD on the reliant ones), and write the results.

    python tools/shortcut_benchmark.py                               # every setting; resumes
    python tools/shortcut_benchmark.py --settings mnist1d_local      # one setting (xai.shortcut.benchmark.SETTINGS)
    python tools/shortcut_benchmark.py --max-minutes 60              # start no new model after an hour
    python tools/shortcut_benchmark.py --report-only                 # results and figures again from the records
    python tools/shortcut_benchmark.py --quick --out /tmp/sc         # smoke run: tiny models, a few inputs

Resumable model by model: each model's record is written, atomically, to
``<out>/models/shortcut/runs/<setting>__<model>.json`` as soon as it is scored, with a key of the
setting, the model's spec, the data's fingerprint and the methods; a later run reuses every record
whose key matches (``--restart`` ignores them) and trains only the rest. Commit the records, and the
next session picks up where this one stopped. Trained models are cached (git-ignored) in
``<out>/data/shortcut/`` so that the clean models (p = 0) serve every marker kind of a data set.
The reliant model (p = 1, seed 0) and the Clark control (seed 0) of each setting are kept beside the
results as ``<out>/models/shortcut/<setting>_{reliant,clark}.keras`` with their provenance JSON.
After a setting's models, SpRAy clusters the maps of its kept reliant and Clark models
(``xai.shortcut.clusters``; ``runs/<setting>.spray.json``). After the models,
``<out>/models/shortcut/shortcut_results.json`` (``xai.shortcut.report``) and
the figures ``<out>/figures/shortcut_*.png`` are written from every record there is, of every
setting (not only those run); ``complete`` says whether every planned model is in.

Run it alone (2 cores: one training at a time). Times on the 2-core CPU are in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:     # run as a script: the repository's modules
    sys.path.insert(0, _REPO)

from xai.files import atomic_open  # noqa: E402
from xai.shortcut import benchmark as sb  # noqa: E402
from xai.shortcut import report  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", nargs="+", choices=sorted(sb.SETTINGS), default=list(sb.SETTINGS))
    p.add_argument("--out", default=_REPO, help="folder holding models/ and figures/ (default: the repository)")
    p.add_argument("--data", default=None, help="HMT root (default: hmt_utils.default_root())")
    p.add_argument("--max-minutes", type=float, default=None, help="start no new model after this many minutes")
    p.add_argument("--restart", action="store_true", help="score every model again, ignoring stored records")
    p.add_argument("--report-only", action="store_true", help="results and figures from the stored records only")
    p.add_argument("--quick", action="store_true", help="smoke run (needs --out outside the repository)")
    args = p.parse_args(argv)
    if args.quick and os.path.commonpath([os.path.abspath(args.out), _REPO]) == _REPO:
        p.error("--quick writes tiny models' results: give it --out outside the repository")
    return args


def record_path(out: str, setting, spec) -> str:
    return os.path.join(out, "models", "shortcut", "runs", f"{setting.name}__{spec.model_id(setting)}.json")


def _write_json(path: str, obj) -> None:
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def _stored(path: str, key: str):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return record if record.get("key") == key else None


def _cached(path: str):
    """A cached model and its JSON, or None unless both are there."""
    import keras
    meta = os.path.splitext(path)[0] + ".json"
    if not (os.path.isfile(path) and os.path.isfile(meta)):
        return None
    with open(meta) as f:
        return keras.models.load_model(path), json.load(f)


def _kept_key(path: str):
    meta = os.path.splitext(path)[0] + ".json"
    if not (os.path.isfile(path) and os.path.isfile(meta)):
        return None
    with open(meta) as f:
        return json.load(f).get("model_key")


def _model(out, setting, spec, bundle, log):
    """The spec's model: from the cache, or trained and cached; kept beside the results when it is
    one of the kept ones and not there yet."""
    from xai.training.saving import save_model_with_provenance
    # keyed by what the model depends on: the clean model (p = 0) has one key for every marker kind
    cache = os.path.join(out, "data", "shortcut", f"{spec.model_id(setting)}_{sb.model_key(setting, spec, bundle)}.keras")
    cached = _cached(cache)
    if cached is None:
        first_reliant = setting.data == "hmt" and spec.fraction == 1 and not spec.control and spec.seed == setting.seeds[0]
        callbacks = [sb.flip_rate_callback(bundle, setting.marked_class)] if first_reliant else []
        start = time.perf_counter()
        model, info = sb.train_spec(setting, spec, bundle, callbacks=callbacks)
        info = sb.training_summary(info, callbacks)
        log(f"  trained in {time.perf_counter() - start:.0f} s: best epoch {info['best_epoch']} of {setting.epochs}, "
            f"validation accuracy {info['val_accuracy']:.3f}")
        save_model_with_provenance(model, cache, info)
    else:
        model, info = cached
    kept = report.kept_name(setting, spec)
    kept_path = os.path.join(out, "models", "shortcut", f"{kept}.keras")
    if kept and _kept_key(kept_path) != sb.model_key(setting, spec, bundle):
        save_model_with_provenance(model, kept_path, dict(
            info, setting=setting.name, marked_class=setting.marked_class, fraction=spec.fraction, control=spec.control,
            model_id=spec.model_id(setting), model_key=sb.model_key(setting, spec, bundle)))
    return model, info


def _add_flips_by_class(out, setting, spec, bundle, path, record, log) -> None:
    """A record written before the flip rate was kept by class gets it from its cached model (the
    same ``reliance`` call; its flip rate must come out the same, or the record is left alone)."""
    from xai.shortcut.scores import reliance
    if "flip_rate_by_class" in record["reliance"]:
        return
    cached = _cached(os.path.join(out, "data", "shortcut",
                                  f"{spec.model_id(setting)}_{sb.model_key(setting, spec, bundle)}.keras"))
    if cached is None:
        return
    rel = reliance(cached[0], bundle.x_held, bundle.x_held_marked, bundle.y_held, setting.marked_class)
    if abs(rel["flip_rate"] - record["reliance"]["flip_rate"]) > 1e-9:
        log(f"  {spec.model_id(setting)}: its cached model's flip rate {rel['flip_rate']:.4f} is not the record's; left alone")
        return
    record["reliance"]["flip_rate_by_class"] = rel["flip_rate_by_class"]
    _write_json(path, record)
    log(f"  {spec.model_id(setting)}: flip rate by class added from its cached model")


def run_setting(args, setting, deadline, log) -> bool:
    """Every model of the setting, reused or trained and scored; False if the deadline stopped it."""
    bundle = sb.load_bundle(setting, hmt_root=args.data)
    log(f"{setting.name}: {len(bundle.y_train)} training inputs, held out {bundle.held_out}, "
        f"{len(bundle.explain)} explained")
    for spec in sb.model_plan(setting):
        path, key = record_path(args.out, setting, spec), sb.resume_key(setting, spec, bundle)
        stored = None if args.restart else _stored(path, key)
        if stored is not None:
            _add_flips_by_class(args.out, setting, spec, bundle, path, stored, log)
            continue
        if deadline is not None and time.time() > deadline:
            log(f"  stopping before {spec.model_id(setting)}: --max-minutes reached")
            return False
        log(f"  {spec.model_id(setting)} ({spec.group(setting)})")
        start = time.perf_counter()
        model, info = _model(args.out, setting, spec, bundle, log)
        record = sb.score_model(setting, spec, model, bundle)
        record.update(key=key, setting=setting.name, model_id=spec.model_id(setting), fraction=spec.fraction,
                      seed=spec.seed, control=spec.control, group=spec.group(setting), training=info,
                      held_out=bundle.held_out, seconds_total=round(time.perf_counter() - start, 1))
        _write_json(path, record)
        rel = record["reliance"]
        log(f"  flip rate {rel['flip_rate']:.3f}, accuracy drop {rel['accuracy_drop']:+.3f}, clean accuracy "
            f"{rel['accuracy_clean']:.3f}; {record['seconds_total']:.0f} s")
    run_spray(args, setting, bundle, log)
    return True


def run_spray(args, setting, bundle, log) -> None:
    """SpRAy on the setting's kept reliant and Clark models (``xai.shortcut.clusters``), written to
    ``runs/<setting>.spray.json`` with a key of both models; reused while the key matches."""
    import keras

    from xai.shortcut.clusters import kept_models, spray_key, spray_path, spray_record
    key = spray_key(args.out, setting)
    if key is None:
        log(f"  SpRAy: no kept reliant and Clark models of {setting.name} yet")
        return
    path, kept = spray_path(args.out, setting), kept_models(args.out, setting)
    if not args.restart and _stored(path, key) is not None:
        return
    log(f"  SpRAy on {setting.name}'s kept reliant and Clark models")
    start = time.perf_counter()
    models = {side: keras.models.load_model(p) for side, p in kept.items()}
    record = spray_record(setting, bundle, models["reliant"], models["clark"], options=sb.method_options(setting, bundle))
    record.update(key=key, setting=setting.name, seconds_total=round(time.perf_counter() - start, 1))
    _write_json(path, record)
    clustered = {m: r for m, r in record["methods"].items() if "difference" in r}      # not those left unclustered
    best = max(clustered.items(), key=lambda kv: kv[1]["difference"]["ari"]) if clustered else None
    log(f"  SpRAy: {record['n']} inputs; " + (f"the largest ARI difference {best[1]['difference']['ari']:.2f} ({best[0]}); "
        if best else "no method clustered; ") + f"{record['seconds_total']:.0f} s")


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")      # every model is new to the methods' compiled steps: retracing is expected
    every = [replace(s, **sb.QUICK) if args.quick else s for s in sb.SETTINGS.values()]
    settings = [s for s in every if s.name in args.settings]
    log = lambda msg: print(msg, flush=True)   # noqa: E731
    deadline = None if args.max_minutes is None else time.time() + 60 * args.max_minutes
    if not args.report_only:
        for setting in settings:
            if not run_setting(args, setting, deadline, log):
                break
    results = report.write_results(args.out, every, command="python tools/shortcut_benchmark.py " + " ".join(
        sys.argv[1:] if argv is None else argv))
    log(f"wrote {os.path.join(args.out, 'models', 'shortcut', report.RESULTS)}: "
        f"{'complete' if results['complete'] else 'incomplete'}")
    if args.quick:
        shutil.rmtree(os.path.join(args.out, "data", "shortcut"), ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
