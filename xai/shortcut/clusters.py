"""SpRAy on the planted shortcuts: does a cluster of a method's maps isolate the marked inputs?

The held-out inputs of the marked class, half of them carrying the marker (a seeded half), are
explained for the marked class by the setting's kept reliant model (p = 1) and its kept Clark
control. Each model's maps are clustered in two by SpRAy (:func:`xai.explore.spray`), and the
clusters are compared with which inputs carry the marker: the adjusted Rand index (ARI) with a
bootstrap interval over the inputs, the control's beside it and the difference on the same drawn
inputs. A reliant model whose maps split marked from clean inputs shows the shortcut as a cluster
(the Clever Hans group of Lapuschkin et al. 2019); the control, which cannot use the marker, must
not split them, or the clustering sees the marker itself, not the model's use of it.

Axis key: N inputs clustered, G grid cells of the downsampled maps.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["SPRAY_SEED", "SPRAY_VERSION", "spray_inputs", "spray_record"]

SPRAY_SEED = 11           # which half of the inputs carries the marker
SPRAY_VERSION = 2         # of the clustering and its interval: a change makes stored SpRAy records stale
# (a method whose maps are all the same on a model is recorded as not clustered: no version change,
# as the methods that were clustered are clustered as before)
MAX_INPUTS = 200          # the most held-out inputs of the marked class clustered


def spray_inputs(setting, bundle) -> tuple[np.ndarray, np.ndarray]:
    """The inputs clustered: float32, the held-out inputs of the marked class (at most
    ``MAX_INPUTS``), a seeded half with the marker (as the benchmark plants it); and bool (N,) which."""
    idx = np.flatnonzero(bundle.y_held == setting.marked_class)[:MAX_INPUTS]
    if len(idx) < 8:
        raise ValueError(f"only {len(idx)} held-out inputs of class {setting.marked_class}: SpRAy needs at least 8")
    marked = np.zeros(len(idx), bool)
    marked[np.random.default_rng(SPRAY_SEED).permutation(len(idx))[:len(idx) // 2]] = True
    x = np.where(marked.reshape((-1,) + (1,) * (bundle.x_held.ndim - 1)), bundle.x_held_marked[idx], bundle.x_held[idx])
    return x.astype(np.float32), marked


def spray_record(setting, bundle, reliant, control, *, options: dict | None = None, n_boot: int = 1000) -> dict:
    """Every method of ``METHODS``: each model's two SpRAy clusters of its maps, their ARI against
    the marker with intervals, the difference, the eigengap's cluster count, and the clusters' mean
    maps with their share of marked inputs (for the figure)."""
    from xai.explore.spray import ConstantMaps, cluster_agreement, spray
    from xai.methods import METHODS, method_function
    x, marked = spray_inputs(setting, bundle)
    classes = np.full(len(x), setting.marked_class)
    neighbours = int(max(3, min(10, len(x) // 6)))
    out = {"n": int(len(x)), "marked": int(marked.sum()), "n_neighbors": neighbours, "seed": SPRAY_SEED, "methods": {}}
    for name in METHODS:
        start = time.perf_counter()
        labels, models = {}, {}
        for side, model in (("reliant", reliant), ("control", control)):
            maps = method_function(name)(model, x, classes, **(options or {}).get(name, {}))
            try:
                result = spray(maps, 2, n_neighbors=neighbours, seed=0)
            except ConstantMaps:
                models = {"not_clustered": f"its maps are all the same on the {side} model (after downsampling)"}
                break
            labels[side] = result.labels
            models[side] = {"eigengap_k": result.eigengap_k, "sizes": result.sizes.tolist(),
                            "marked_share": [float(marked[result.labels == c].mean()) if result.sizes[c] else 0.0
                                             for c in range(result.k)],
                            "mean_maps": np.round(result.mean_maps, 4).tolist()}
        if "not_clustered" in models:
            out["methods"][name] = dict(models, seconds=round(time.perf_counter() - start, 2))
            continue
        agreement = cluster_agreement(labels["reliant"], marked, control_labels=labels["control"], n_boot=n_boot)
        out["methods"][name] = {"reliant": {**agreement["model"], **models["reliant"]},
                                "control": {**agreement["control"], **models["control"]},
                                "difference": agreement["difference"], "seconds": round(time.perf_counter() - start, 2)}
    return out


# --- the results ---

def spray_path(out: str, setting) -> str:
    import os
    return os.path.join(out, "models", "shortcut", "runs", f"{setting.name}.spray.json")


def load_spray(out: str, setting) -> dict | None:
    """The setting's SpRAy record (``tools/shortcut_benchmark.py`` writes it), or None (also for a
    record of an older version of the clustering)."""
    import json
    import os
    path = spray_path(out, setting)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return record if record.get("key") == spray_key(out, setting) else None


def kept_models(out: str, setting) -> dict[str, str]:
    """The paths of the setting's kept reliant and Clark models."""
    import os
    return {side: os.path.join(out, "models", "shortcut", f"{setting.name}_{side}.keras") for side in ("reliant", "clark")}


def spray_key(out: str, setting) -> str | None:
    """What a SpRAy record must match: both kept models (their keys), the methods, the inputs' seed
    and count, and the clustering's version; None while a kept model is missing."""
    import json
    import os

    from xai.methods import METHODS
    from xai.shortcut.benchmark import _hash
    keys = {}
    for side, path in kept_models(out, setting).items():
        meta = os.path.splitext(path)[0] + ".json"
        if not (os.path.isfile(path) and os.path.isfile(meta)):
            return None
        with open(meta) as f:
            keys[side] = json.load(f).get("model_key")
    return _hash({"models": keys, "methods": list(METHODS), "seed": SPRAY_SEED, "max_inputs": MAX_INPUTS,
                  "version": SPRAY_VERSION})


def spray_summary(record: dict | None) -> dict | None:
    """The numbers of a SpRAy record, without its mean maps: per method the ARI of the reliant
    model's and the control's clusters with intervals, the difference, each side's eigengap count
    and its clusters' shares of marked inputs."""
    if record is None:
        return None
    from xai.methods import METHODS
    keep = ("ari", "low", "high", "eigengap_k", "sizes", "marked_share")
    order = [m for m in METHODS if m in record["methods"] and "not_clustered" not in record["methods"][m]]   # METHODS' order
    return {"n": record["n"], "marked": record["marked"], "n_neighbors": record["n_neighbors"],
            "methods": {m: {"reliant": {k: r["reliant"][k] for k in keep}, "control": {k: r["control"][k] for k in keep},
                            "difference": r["difference"]} for m, r in ((m, record["methods"][m]) for m in order)},
            "not_clustered": {m: r["not_clustered"] for m, r in record["methods"].items() if "not_clustered" in r}}


def spray_markdown(name: str, summary: dict) -> str:
    """The SpRAy table of one setting."""
    from xai.methods import METHODS
    ci = lambda d: f"{d['ari']:.2f} [{d['low']:.2f}, {d['high']:.2f}]"     # noqa: E731
    rows = "".join(f"| {METHODS[m].label if m in METHODS else m} | {ci(r['reliant'])} | {ci(r['control'])} | "
                   f"{ci(r['difference'])} | {r['reliant']['eigengap_k']} / {r['control']['eigengap_k']} |\n"
                   for m, r in summary["methods"].items())
    skipped = "".join(f"\nNot clustered: {METHODS[m].label if m in METHODS else m}, {why}.\n"
                      for m, why in summary.get("not_clustered", {}).items())
    return (f"\nSpRAy on {name}: {summary['n']} held-out inputs of the marked class, {summary['marked']} of them marked, "
            "each model's maps in two spectral clusters; adjusted Rand index of the clusters against the marker "
            "[95 % bootstrap interval over the inputs]:\n\n| method | reliant model | Clark control | difference | "
            "eigengap's count (reliant / control) |\n| --- | --- | --- | --- | --- |\n" + rows + skipped)


def spray_figure(out: str, results: dict):
    """For each setting with SpRAy results: the method whose clusters isolate the marker best
    against the control; each model's two clusters' mean maps, titled with their share of marked
    inputs."""
    import matplotlib.pyplot as plt

    from xai.methods import METHODS
    rows = []
    for name, s in results["settings"].items():
        if s.get("spray"):
            record = load_spray(out, _setting(name))
            best = max(s["spray"]["methods"], key=lambda m: s["spray"]["methods"][m]["difference"]["ari"])
            rows.append((name, best, record["methods"][best]))
    if not rows:
        raise ValueError("no SpRAy results: run python tools/shortcut_benchmark.py")
    fig, axes = plt.subplots(len(rows), 4, figsize=(11, 2.3 * len(rows)), squeeze=False)
    for ax_row, (name, method, r) in zip(axes, rows):
        for k, side in enumerate(("reliant", "control")):
            for c in range(2):
                ax = ax_row[2 * k + c]
                mean = np.asarray(r[side]["mean_maps"][c])
                if mean.ndim == 1:
                    ax.plot(mean, color="black"), ax.set_ylim(0, 1.05)
                else:
                    ax.imshow(mean, cmap="inferno", vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
                ax.set_title(f"{'reliant' if side == 'reliant' else 'Clark control'}, cluster {c + 1}: "
                             f"{r[side]['sizes'][c]} inputs,\n{100 * r[side]['marked_share'][c]:.0f} % marked", fontsize=8)
        ax_row[0].set_ylabel(f"{name}\n{METHODS[method].label}\nARI {r['reliant']['ari']:.2f} vs {r['control']['ari']:.2f}",
                             fontsize=8)
    fig.suptitle("SpRAy: each model's maps of the marked class in two clusters (mean |map|, downsampled)", fontsize=10)
    fig.tight_layout()
    return fig


def _setting(name: str):
    from xai.shortcut.benchmark import SETTINGS
    return SETTINGS[name]
