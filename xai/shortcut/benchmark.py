"""The planted-shortcut benchmark, one model at a time: the settings, the data each needs, training a
model with its marker, and scoring it (reliance, every method's mass on the marker, ROAD on the
reliant models). ``tools/shortcut_benchmark.py`` runs the plan and resumes it; ``xai.shortcut.report``
turns the records into the results.

A setting is a data set and a marker kind. Its models: the marker in a share p of the marked class's
training examples for each p and seed (p = 0 is the clean model, shared by the settings of a data
set: the Adebayo control when explained on marked inputs), and Clark et al.'s control for each seed
(the marker in a random half of every class alike). Every model is scored on the same held-out
inputs: MNIST-1D's test split, HMT's tiles of held-out slides (the model trains on the other slides,
its epoch chosen on source images of those).

Axis key: N examples, T signal length, H, W image size, C channels, K classes, M models.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

import xai.shortcut.markers as markers
from xai.shortcut.markers import MARKER_KINDS, add_marker, marked_subset
from xai.shortcut.scores import edge_map, map_change, marker_scores, random_map, reliance

__all__ = ["Setting", "SETTINGS", "QUICK", "ModelSpec", "model_plan", "Bundle", "load_bundle", "marked_training_set",
           "train_spec", "flip_rate_callback", "training_summary", "method_options", "score_model", "model_key",
           "resume_key"]

HELD_OUT_SEED = 20261207       # the markers planted into the held-out inputs: the same for every model
REFERENCE_SEED = 7             # the random reference map


@dataclass(frozen=True)
class Setting:
    """One data set with one marker kind, and what its models and scores take."""
    data: str                       # "mnist1d" or "hmt"
    kind: str                       # marker kind (xai.shortcut.markers.MARKER_KINDS)
    marked_class: int               # the class whose training examples carry the marker
    fractions: tuple = (0.0, 0.2, 0.5, 0.8, 1.0)   # shares p of the marked class marked in training
    seeds: tuple = (0, 1, 2)        # one model a seed for each p, and a Clark control a seed
    reliant_from: float = 0.8       # p >= this: the reliant side of the detection
    epochs: int = 30                # the short schedule (shortcuts are learned fast)
    n_explain: int = 64             # held-out inputs of the marked class, marked, explained by every model
    n_road: int = 32                # of those, the first n_road get ROAD curves on the reliant models
    rise_masks: int = 2000
    eg_samples: int = 64            # expected gradients: samples an input, references from the training set
    recipe: tuple = ()              # (field, value) pairs that change the data set's TrainConfig defaults
    quick: bool = False             # a smoke run: tiny models, few inputs

    def __post_init__(self):
        problems = []
        if self.data not in ("mnist1d", "hmt"):
            problems.append(f"data must be 'mnist1d' or 'hmt', got {self.data!r}")
        if self.kind not in MARKER_KINDS or (self.data == "mnist1d" and self.kind != "local"):
            problems.append(f"kind must be one of {MARKER_KINDS} ('local' for signals), got {self.kind!r}")
        if not self.fractions or any(not 0 <= p <= 1 for p in self.fractions) or 0 not in self.fractions:
            problems.append(f"fractions must lie in [0, 1] and include 0 (the clean model), got {self.fractions}")
        if not any(p >= self.reliant_from for p in self.fractions):
            problems.append(f"no fraction reaches reliant_from={self.reliant_from}: there would be no reliant model")
        if not self.seeds or not 1 <= self.n_road <= self.n_explain or self.epochs < 1:
            problems.append(f"need seeds, epochs >= 1 and 1 <= n_road <= n_explain, got {self.seeds}, {self.epochs}, "
                            f"{self.n_road}, {self.n_explain}")
        if problems:
            raise ValueError("invalid shortcut setting: " + "; ".join(problems))

    @property
    def name(self) -> str:
        return f"{self.data}_{self.kind}"


SETTINGS = {s.name: s for s in (
    Setting("mnist1d", "local", marked_class=3),
    Setting("hmt", "local", marked_class=0, fractions=(0.0, 0.5, 1.0), epochs=16, n_explain=16, n_road=8,
            rise_masks=1000, eg_samples=32),
    Setting("hmt", "hue", marked_class=0, fractions=(0.0, 1.0), epochs=16, n_explain=16, n_road=8,
            rise_masks=1000, eg_samples=32),
)}

# the smoke run: the same code on a few inputs and tiny models (``--quick``)
QUICK = {"fractions": (0.0, 1.0), "seeds": (0, 1), "epochs": 1, "n_explain": 6, "n_road": 4, "rise_masks": 50,
         "eg_samples": 4, "quick": True}


@dataclass(frozen=True)
class ModelSpec:
    """One model of a setting."""
    fraction: float                 # p; for a control, the share of every class marked
    seed: int
    control: bool = False           # Clark's control: the marker in every class alike

    def model_id(self, setting: Setting) -> str:
        if self.fraction == 0:
            return f"{setting.data}_p0_s{self.seed}"           # no marker: one clean model for every kind
        tag = "clark" if self.control else f"p{self.fraction:g}"
        return f"{setting.name}_{tag}_s{self.seed}"

    def group(self, setting: Setting) -> str:
        """``"reliant"``, ``"clark"``, ``"adebayo"`` (p = 0) or ``"partial"`` (0 < p < reliant_from)."""
        if self.control:
            return "clark"
        if self.fraction == 0:
            return "adebayo"
        return "reliant" if self.fraction >= setting.reliant_from else "partial"


def model_plan(setting: Setting) -> list[ModelSpec]:
    """The setting's models, seed by seed: the most reliant (the largest p), the Clark control and the
    clean model first, so that a run stopped part-way holds whole seeds of what detection compares;
    then the other p."""
    top, rest = max(setting.fractions), sorted(set(setting.fractions) - {max(setting.fractions), 0.0})
    first = [spec for s in setting.seeds for spec in (ModelSpec(float(top), s), ModelSpec(0.5, s, control=True),
                                                      ModelSpec(0.0, s))]
    return first + [ModelSpec(float(p), s) for p in rest for s in setting.seeds]


# --- data ---

@dataclass
class Bundle:
    """A setting's data: training inputs, held-out inputs with and without the marker, and the
    inputs explained (held-out, marked class, marked)."""
    x_train: np.ndarray             # (N, T, 1) float32 or (N, H, W, 3) uint8
    y_train: np.ndarray             # int (N,)
    x_held: np.ndarray              # clean held-out inputs, like x_train
    y_held: np.ndarray
    x_held_marked: np.ndarray
    mask_held: np.ndarray           # bool (N, T) or (N, H, W)
    explain: np.ndarray             # int (E,) indices into the held-out inputs
    references: np.ndarray          # float32 (R, ...) clean training inputs: expected gradients' references
    fingerprint: str
    noise_scale: float              # the span of the data's values: ROAD's noise is scaled by it
    marker_margin: int | None = None  # add_marker's margin: HMT keeps the marker inside every training crop
    groups: object = None           # HMT: hmt_utils.TileGroups of the training tiles
    held_out: dict = field(default_factory=dict)   # what the held-out inputs are
    data_args: dict = field(default_factory=dict)  # MNIST-1D: the generator's arguments


def _fingerprint(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _finish(setting, x, y, xh, yh, groups, held_out, rng, margin=None, data_args=None) -> Bundle:
    marked, mask = add_marker(xh, setting.kind, seed=HELD_OUT_SEED, margin=margin)
    explain = np.flatnonzero(yh == setting.marked_class)[:setting.n_explain]
    if len(explain) < min(setting.n_explain, 4):
        raise ValueError(f"only {len(explain)} held-out inputs of class {setting.marked_class} to explain")
    references = x[np.sort(rng.choice(len(x), 32 if not setting.quick else 4, replace=False))].astype(np.float32)
    span = 255.0 if x.dtype == np.uint8 else float(x.max() - x.min())
    return Bundle(x, y, xh, yh, marked, mask, explain, references, _fingerprint(x, y, xh, yh), span, margin, groups,
                  held_out, data_args or {})


def load_bundle(setting: Setting, *, hmt_root: str | None = None) -> Bundle:
    """The setting's data (MNIST-1D: generated; HMT: the course's tiles pooled, slides held out)."""
    rng = np.random.default_rng(0)
    if setting.data == "mnist1d":
        import mnist1d_utils as m1
        data = m1.make_dataset()
        x, xh = (data[k][..., None].astype(np.float32) for k in ("x", "x_test"))    # (N, 40, 1)
        y, yh = data["y"], data["y_test"]
        if setting.quick:
            x, y, xh, yh = x[:600], y[:600], xh[:300], yh[:300]
        return _finish(setting, x, y, xh, yh, None, {"split": "MNIST-1D test split", "n": int(len(yh))}, rng,
                       data_args=dict(data["args"]))
    return _hmt_bundle(setting, hmt_root, rng)


def _hmt_bundle(setting, root, rng) -> Bundle:
    import hmt_utils as hmt
    from xai.training.slides import pooled_tiles, slide_folds
    x, y, pooled, _ = pooled_tiles(root, progress=False)
    slides, images = pooled.slide, pooled.source_image
    folds = slide_folds(slides, y, 5, seed=0)
    held = next(f for f in folds if np.sum(np.isin(slides, f) & (y == setting.marked_class)) >= setting.n_explain)
    out = np.isin(slides, held)
    if setting.quick:                          # a few tiles of each class on each side
        keep = np.zeros(len(y), bool)
        for side in (out, ~out):
            for c in np.unique(y[side]):
                keep[np.flatnonzero(side & (y == c))[:12 if side is out else 40]] = True
        x, y, slides, images, out = x[keep], y[keep], slides[keep], images[keep], out[keep]
    groups = hmt.TileGroups(slides[~out], images[~out])
    return _finish(setting, x[~out], y[~out], x[out], y[out], groups,
                   {"split": "HMT tiles of held-out slides (course train and test pooled)", "slides": list(held),
                    "n": int(out.sum())}, rng, margin=_crop_margin(setting, x.shape[1]))


def _crop_margin(setting, side: int) -> int:
    """Keep the marker inside every random training crop (side - crop from each edge), or as near the
    centre as the crop allows."""
    crop = _hmt_config(setting, 0).train_crop or side
    return min(side - crop, (side - markers.PATCH_SIZE) // 2)


# --- training ---

def marked_training_set(setting: Setting, spec: ModelSpec, bundle: Bundle) -> tuple[np.ndarray, np.ndarray]:
    """The training inputs with the spec's marker planted: (x, bool (N,) which carry it)."""
    chosen = marked_subset(bundle.y_train, setting.marked_class, spec.fraction, seed=spec.seed, control=spec.control)
    x = bundle.x_train.copy()
    if chosen.any():
        x[chosen] = add_marker(x[chosen], setting.kind, seed=1000 + spec.seed, margin=bundle.marker_margin)[0]
    return x, chosen


# The network the committed HMT shortcut records were trained with (valid convolutions, a 3 x 3 stem, the RGB
# gain and offset), pinned here rather than read from hmt_utils.TrainConfig's defaults, which move with the
# recipe chosen across slides: a model's key holds the setting's overrides, not these, so following the
# defaults would train other models under the same keys (tests/xai/shortcut/test_benchmark.py pins it).
HMT_RECORDED_NETWORK = {"padding": "valid", "stem_kernel": 3, "colour_augment": "rgb"}


def _hmt_config(setting: Setting, seed: int):
    import hmt_utils as hmt
    small = {"width": 4, "block3_width": 8, "train_crop": 64, "batch_size": 16} if setting.quick else {}
    return hmt.TrainConfig(epochs=setting.epochs, seed=seed, **{**HMT_RECORDED_NETWORK, **dict(setting.recipe), **small})


def train_spec(setting: Setting, spec: ModelSpec, bundle: Bundle, *, callbacks=()):
    """Train the spec's model on its marked training set (the data set's own recipe, the setting's
    schedule). Returns ``(model, info)`` as the data set's ``train`` does, plus ``marked_in_training``."""
    x, chosen = marked_training_set(setting, spec, bundle)
    if setting.data == "mnist1d":
        import mnist1d_utils as m1
        if callbacks:
            raise ValueError("mnist1d_utils.train takes no callbacks; measure the MNIST-1D models after training")
        config = m1.TrainConfig(epochs=setting.epochs, seed=spec.seed, **dict(setting.recipe),
                                **({"width": 8} if setting.quick else {}))
        model, info = m1.train({"x": x[..., 0], "y": bundle.y_train, "args": bundle.data_args}, config)
    else:
        import hmt_utils as hmt
        model, info = hmt.train(x, bundle.y_train, _hmt_config(setting, spec.seed), groups=bundle.groups,
                                one_group_classes="train", callbacks=callbacks)
    info["marked_in_training"] = int(chosen.sum())
    return model, info


def flip_rate_callback(bundle: Bundle, marked_class: int, n: int = 256):
    """A Keras callback that measures the flip rate on ``n`` held-out inputs of other classes after
    every epoch (``.rates``; None for an epoch where the model gets none of them right): how many
    epochs a shortcut takes. It only measures; the epoch kept is still the one chosen on the
    validation split."""
    import keras
    idx = np.flatnonzero(bundle.y_held != marked_class)[:n]

    class FlipRateByEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rates = []

        def on_epoch_end(self, epoch, logs=None):
            try:
                rel = reliance(self.model, bundle.x_held[idx], bundle.x_held_marked[idx], bundle.y_held[idx],
                               marked_class, require_marked_class=False)
                self.rates.append(round(rel["flip_rate"], 4))
            except ValueError:                                  # no other-class input right yet
                self.rates.append(None)
    return FlipRateByEpoch()


def training_summary(info: dict, callbacks=()) -> dict:
    """What a record keeps of a training run: the schedule, the epoch chosen, its validation
    accuracy, the time, the validation curve, and the flip rate by epoch where it was measured."""
    out = {k: info[k] for k in ("best_epoch", "val_accuracy", "train_seconds", "marked_in_training", "config")}
    out["val_accuracy_by_epoch"] = [round(float(v), 4) for v in info["history"].get("val_accuracy", [])]
    for cb in callbacks:
        out["flip_rate_by_epoch"] = cb.rates
    return out


# --- scoring ---

def method_options(setting: Setting, bundle: Bundle) -> dict[str, dict]:
    """Each method's options in the benchmark: the library's defaults, with RISE's mask count,
    expected gradients' references and samples, and a seed for everything random."""
    return {"rise": {"n_masks": setting.rise_masks, "seed": 0},
            "expected_gradients": {"references": bundle.references, "samples": setting.eg_samples, "seed": 0}}


def _explain_every_method(model, x, marked_class, options) -> tuple[dict, dict]:
    from xai.methods import METHODS, method_function
    maps, seconds = {}, {}
    classes = np.full(len(x), marked_class)
    for name in METHODS:
        start = time.perf_counter()
        maps[name] = method_function(name)(model, x, classes, **options.get(name, {}))
        seconds[name] = round(time.perf_counter() - start, 3)
    maps["random"] = random_map(x, seed=REFERENCE_SEED)
    maps["edge"] = edge_map(x)
    return maps, seconds


def score_model(setting: Setting, spec: ModelSpec, model, bundle: Bundle) -> dict:
    """Reliance, every method's (and the reference maps') scores on the marked inputs explained, and
    ROAD's SRG for the reliant models. Per-input values are lists, in the order of ``bundle.explain``."""
    from xai.metrics.removal import removal_curves
    rel = reliance(model, bundle.x_held, bundle.x_held_marked, bundle.y_held, setting.marked_class)
    x = bundle.x_held_marked[bundle.explain].astype(np.float32)
    mask = bundle.mask_held[bundle.explain]
    options = method_options(setting, bundle)
    maps, seconds = _explain_every_method(model, x, setting.marked_class, options)
    scores = {m: {k: _rounded(v) for k, v in marker_scores(a, mask, x.shape).items()} for m, a in maps.items()}
    record = {"reliance": rel, "scores": scores, "seconds": seconds, "setting_fields": asdict(setting),
              "mask_share": _rounded(mask.reshape(len(mask), -1).mean(1))}
    if setting.kind == "hue":                  # no pixel map localises it: how much do the maps change?
        clean = bundle.x_held[bundle.explain].astype(np.float32)
        clean_maps, _ = _explain_every_method(model, clean, setting.marked_class, options)
        for m in maps:
            scores[m]["change"] = _rounded(map_change(clean_maps[m], maps[m], x.shape))
    if spec.group(setting) == "reliant":
        start = time.perf_counter()
        n = min(setting.n_road, len(x))
        record["srg"] = {m: _rounded(removal_curves(model, x[:n], maps[m][:n], setting.marked_class, fill="road",
                                                    noise_scale=bundle.noise_scale)["srg"])
                         for m in maps if m != "random"}
        record["road_seconds"] = round(time.perf_counter() - start, 1)
    return record


def _rounded(values) -> list:
    return [round(float(v), 6) for v in np.asarray(values).ravel()]


def _marker_constants() -> dict:
    return {"strength": {f"{k}_{d}": v for (k, d), v in markers.DEFAULT_STRENGTH.items()}, "patch": markers.PATCH_SIZE,
            "zigzag": markers.ZIGZAG_LENGTH, "signal_margin": markers.SIGNAL_MARGIN}


def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_key(setting: Setting, spec: ModelSpec, bundle: Bundle) -> str:
    """What a trained model depends on: the data, the recipe and schedule, the spec and, for a model
    that saw a marker, the marker and its class (the clean model's key is the same for every kind)."""
    key = {"data": bundle.fingerprint, "epochs": setting.epochs, "recipe": list(setting.recipe), "quick": setting.quick,
           "spec": asdict(spec)}
    if spec.fraction > 0:
        key.update(kind=setting.kind, marked_class=setting.marked_class, markers=_marker_constants(),
                   margin=bundle.marker_margin)
    return _hash(key)


def resume_key(setting: Setting, spec: ModelSpec, bundle: Bundle) -> str:
    """What a stored record must match to be reused: the model, the setting, the markers, the
    held-out inputs, the methods and the reference maps."""
    from xai.methods import METHODS
    return _hash({"model": model_key(setting, spec, bundle), "setting": asdict(setting), "markers": _marker_constants(),
                  "methods": list(METHODS), "held_out_seed": HELD_OUT_SEED, "reference_seed": REFERENCE_SEED})
