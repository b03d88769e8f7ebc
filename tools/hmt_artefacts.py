"""The HMT network's marks in its maps, before and after the padding change: the centre pile and the
checkerboard of |IG| and Grad-CAM's frame share (``xai.analysis.artefacts.map_artefacts``) on the 16
course test tiles a new user would try (2 a class, seed 0), recorded per model, and the figure that
shows them side by side.

    python tools/hmt_artefacts.py --label "valid 3 x 3 stem (before)"      # the committed models/HMT.keras
    python tools/hmt_artefacts.py --model path/to/other.keras --label "..."
    python tools/hmt_artefacts.py --figure-only                            # figures/hmt_artefacts.png again

Each run adds (or replaces) the model's entry, keyed by its file's hash, in
``models/hmt_artefacts.json`` (the measures, the label, the model path at the time) and its maps in
``models/hmt_artefacts/<hash>.npz`` (mean |IG| over the tiles, one tile's |IG| and Grad-CAM), then
draws ``figures/hmt_artefacts.png``: a column a model, in the order recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from xai.files import atomic_open, atomic_path  # noqa: E402

INNER, PER_CLASS, SHOWN = 112, 2, 0        # the training crop; tiles a class; the tile shown alone (its index)


def measure(model_path: str, data_dir=None) -> tuple[dict, dict]:
    """The artefact measures of the model at ``model_path`` and its maps on the 16 tiles."""
    import keras

    import hmt_utils as hmt
    from xai.analysis.artefacts import map_artefacts
    from xai.analysis.stats import stratified_sample
    from xai.methods.cam import grad_cam
    from xai.methods.integrated_gradients import integrated_gradients
    _, (x_test, y_test), names = hmt.load_hmt(data_dir, progress=False)
    x = x_test[stratified_sample(y_test, PER_CLASS, 0, n_classes=len(names))].astype(np.float32)
    model = keras.models.load_model(model_path)
    found = map_artefacts(model, x, inner=INNER)
    ig = np.abs(integrated_gradients(model, x, steps=32)).sum(-1)                 # (16, 150, 150)
    maps = {"mean_ig": ig.mean(0).astype(np.float32), "tile": x[SHOWN].astype(np.uint8),
            "tile_ig": ig[SHOWN].astype(np.float32), "tile_grad_cam": grad_cam(model, x[SHOWN:SHOWN + 1])[0]}
    return found, maps


def figure(records: dict, folder: str):
    """A column a model: the mean |IG| over the tiles, one tile's |IG| and Grad-CAM, the column profile."""
    import matplotlib.pyplot as plt
    n = len(records)
    fig, axes = plt.subplots(4, n, figsize=(3.3 * n, 11.5), squeeze=False, layout="constrained")
    for j, (sha, r) in enumerate(records.items()):
        with np.load(os.path.join(folder, f"{sha}.npz")) as z:
            maps = {k: z[k] for k in z.files}
        inner = (150 - INNER) // 2
        for i, (key, what) in enumerate((("mean_ig", "mean |IG|, 16 tiles"), ("tile_ig", "one tile, |IG|"),
                                          ("tile_grad_cam", "one tile, Grad-CAM"))):
            ax = axes[i, j]
            ax.imshow(maps[key], cmap="inferno")
            if key != "tile_grad_cam":
                ax.add_patch(plt.Rectangle((inner, inner), INNER, INNER, fill=False, ec="cyan", lw=0.8, ls="--"))
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{r['label']}\n{what}" if i == 0 else what, fontsize=8.5)
        ax = axes[3, j]
        profile = np.asarray(r["column_profile"])
        ax.plot(profile, lw=0.8)
        ax.set_title(f"centre / outside {r['centre_to_outside']:.2f}; columns alternate {r['column_alternation']:.2f}\n"
                     f"Grad-CAM frame share {r['grad_cam_border_share']:.3f} (area {r['border_area_share']:.3f})",
                     fontsize=7.5)
        ax.set_xlabel("column"), ax.set_ylabel("mean |IG|")
    fig.suptitle("HMT's maps: the network's own marks (dashed: the central 112 px square, the training crop)", fontsize=10)
    return fig


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.path.join(_REPO, "models", "HMT.keras"))
    p.add_argument("--label", default=None, help="the model's name in the figure (required unless --figure-only)")
    p.add_argument("--figure-only", action="store_true")
    p.add_argument("--data", default=None, help="HMT folder (default: $HMT_DIR or data/hmt)")
    p.add_argument("--out", default=_REPO, help="folder holding models/ and figures/ (default: the repository)")
    args = p.parse_args(argv)
    if not args.figure_only and not args.label:
        p.error("--label is required: the name of the model in the figure")
    from xai.analysis.sweep_store import file_sha1
    from xai.plots import save_figure
    path, folder = os.path.join(args.out, "models", "hmt_artefacts.json"), os.path.join(args.out, "models", "hmt_artefacts")
    records = {}
    if os.path.isfile(path):
        with open(path) as f:
            records = json.load(f)
    if not args.figure_only:
        sha = file_sha1(args.model)
        found, maps = measure(args.model, args.data)
        os.makedirs(folder, exist_ok=True)
        with atomic_path(os.path.join(folder, f"{sha}.npz")) as tmp:
            np.savez_compressed(tmp, **maps)
        shown = os.path.relpath(args.model, _REPO) if os.path.abspath(args.model).startswith(_REPO) else args.model
        records[sha] = dict(found, label=args.label, model=shown,
                            command="python tools/hmt_artefacts.py " + " ".join(sys.argv[1:] if argv is None else argv))
        with atomic_open(path, "w") as f:
            json.dump(records, f, indent=1)
            f.write("\n")
        print(f"{args.label}: centre / outside {found['centre_to_outside']:.2f}, columns {found['column_alternation']:.2f}, "
              f"rows {found['row_alternation']:.2f}, Grad-CAM frame {found['grad_cam_border_share']:.3f}")
    if records:
        save_figure(figure(records, folder), os.path.join(args.out, "figures", "hmt_artefacts.png"))
    return records


if __name__ == "__main__":
    main()
