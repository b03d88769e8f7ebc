"""MNIST-1D: an exact generator with ground-truth masks, and a 1D CNN that explains well.

The generator reproduces Greydanus (2020), "Scaling down deep learning" (github.com/greydanus/mnist1d)
number for number, with a local ``np.random.RandomState`` in place of the global generator. On top of
it, every example carries a ground-truth mask: the positions where the digit's template lies after
padding, scaling, translation, shear and subsampling. The mask is derived from the same transform and
draws no extra random numbers, so the signals stay exact.

Axis key: N examples, T signal length (40), K classes (10).
"""
from __future__ import annotations

import io
import os
import pickle
from dataclasses import asdict, dataclass

import numpy as np
from scipy.interpolate import interp1d
from scipy.ndimage import gaussian_filter

import xai.training.train as tu

__all__ = [
    "CLASS_NAMES",
    "get_dataset_args",
    "get_templates",
    "make_dataset",
    "load_pickle_dataset",
    "plot_examples",
    "TrainConfig",
    "build_model",
    "train",
    "save_model",
]

CLASS_NAMES = [str(d) for d in range(10)]


# --- data set arguments and templates ---

@dataclass(frozen=True)
class DatasetArgs:
    """Every setting of the MNIST-1D generator (Greydanus 2020 defaults), the seed included."""
    num_samples: int = 5000          # examples in all, split into train and test
    train_split: float = 0.8         # share of examples in the training split
    template_len: int = 12           # length of each digit template
    padding: tuple = (36, 60)        # zeros appended to the template: a random count in [lo, hi]
    scale_coeff: float = 0.4         # amplitude scaled by 1 + scale_coeff * U(-0.5, 0.5)
    max_translation: int = 48        # circular shift by a random k in [0, max_translation)
    corr_noise_scale: float = 0.25   # Gaussian-smoothed noise filling the padding
    iid_noise_scale: float = 2e-2    # white noise added everywhere
    shear_scale: float = 0.75        # linear trend of slope shear_scale * U(-0.5, 0.5)
    shuffle_seq: bool = False        # permute the positions (destroys spatial structure)
    final_seq_length: int = 40       # length after the last subsampling
    seed: int = 42                   # seed of the local RandomState


def get_dataset_args(**overrides) -> DatasetArgs:
    """The MNIST-1D defaults, with any field overridden by keyword (e.g. ``seed=0``)."""
    unknown = set(overrides) - set(DatasetArgs.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown MNIST-1D argument(s) {sorted(unknown)}; "
                         f"expected some of {sorted(DatasetArgs.__dataclass_fields__)}")
    args = DatasetArgs(**overrides)
    _check_args(args)
    return args


def _check_args(args: DatasetArgs) -> None:
    """Refuse settings the generator cannot honour, naming each."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    problems = []
    n_classes = 10
    if not is_int(args.num_samples) or args.num_samples < 2 * n_classes:
        problems.append(f"num_samples must be an int >= {2 * n_classes} (one train and one test example a class), "
                        f"got {args.num_samples!r}")
    if not (isinstance(args.train_split, (int, float)) and 0 < args.train_split < 1):
        problems.append(f"train_split must be in (0, 1), got {args.train_split!r}")
    if not is_int(args.template_len) or args.template_len != 12:
        problems.append(f"template_len must be 12 (the templates' length), got {args.template_len!r}")
    pad = tuple(args.padding) if isinstance(args.padding, (tuple, list)) else None
    if pad is None or len(pad) != 2 or not all(is_int(p) for p in pad) or not 0 <= pad[0] <= pad[1]:
        problems.append(f"padding must be two ints (low, high) with 0 <= low <= high, got {args.padding!r}")
    if not is_int(args.max_translation) or args.max_translation < 1:
        problems.append(f"max_translation must be an int >= 1, got {args.max_translation!r}")
    elif pad is not None and len(pad) == 2 and is_int(pad[1]) and args.max_translation > args.template_len + pad[1]:
        problems.append(f"max_translation ({args.max_translation}) must not exceed the padded length "
                        f"template_len + padding[1] = {args.template_len + pad[1]}")
    for name in ("scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale"):
        v = getattr(args, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            problems.append(f"{name} must be a finite number >= 0, got {v!r}")
    if not is_int(args.final_seq_length) or args.final_seq_length < 2:
        problems.append(f"final_seq_length must be an int >= 2, got {args.final_seq_length!r}")
    if not is_int(args.seed) or args.seed < 0:
        problems.append(f"seed must be an int >= 0, got {args.seed!r}")
    if problems:
        raise ValueError("invalid MNIST-1D arguments: " + "; ".join(problems))


def get_templates() -> dict:
    """The ten 12-point digit templates: ``x`` float64 (10, 12), ``t`` (12,), ``y`` (10,)."""
    digits = np.asarray([
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ])                                               # (10, 12)
    x = digits - digits.mean(1, keepdims=True)       # whiten each template
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]                                    # every template starts and ends at 0
    return {"x": x / 6.0, "t": np.linspace(-5, 5, digits.shape[1]) / 6.0, "y": np.arange(10)}


# --- the transform: one small step a line, as in the original ---

def _resample(x: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of x (L,) onto ``length`` evenly spaced points."""
    return interp1d(np.linspace(0, 1, len(x)), x, axis=0, kind="linear")(np.linspace(0, 1, length))


def _transform(x, t, args: DatasetArgs, rng: np.random.RandomState, eps: float = 1e-8):
    """One template (12,) -> one example (T,), its time axis (T,) and its ground-truth mask (T,).

    The random draws happen in exactly the original order: padding, scale, translation,
    correlated noise, iid noise, shear.
    """
    low, high = args.padding
    pad = low + int(rng.rand() * (high - low + 1))
    x = np.concatenate([x + eps, np.zeros(pad)])              # pad; eps keeps the template non-zero
    length = args.template_len + high
    x = _resample(x, length)                                   # dilate to a fixed length
    t = _resample(t, length)
    x = x * (1 + args.scale_coeff * (rng.rand() - 0.5))        # scale
    k = rng.choice(args.max_translation)
    x = np.concatenate([x[-k:], x[:-k]])                       # circular translation
    digit = x != 0                                             # where the template lies (the original's noise mask)
    x = digit * x + (1 - digit) * gaussian_filter(args.corr_noise_scale * rng.randn(*x.shape), 2)
    x = x + args.iid_noise_scale * rng.randn(*x.shape)         # white noise everywhere
    x = x - args.shear_scale * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))  # shear
    x = _resample(x, args.final_seq_length)                    # subsample
    t = _resample(t, args.final_seq_length)
    mask = _resample(digit.astype(float), args.final_seq_length) >= 0.5  # the mask follows the subsampling
    return x, t, mask


def make_dataset(args: DatasetArgs | None = None) -> dict:
    """Generate MNIST-1D exactly as Greydanus (2020), plus ground-truth masks.

    Args:
        args: generator settings; ``None`` means ``get_dataset_args()``.

    Returns:
        dict with ``x`` float64 (N_train, T), ``y`` int64 (N_train,), ``x_test`` (N_test, T),
        ``y_test`` (N_test,), ``t`` (T,), ``templates`` (dict), ``mask`` bool (N_train, T) and
        ``mask_test`` bool (N_test, T): True where the digit's template lies, False where only
        noise fills the padding; ``args``: the generator arguments as a dict.
    """
    args = get_dataset_args() if args is None else args
    if not isinstance(args, DatasetArgs):
        raise TypeError(f"args must come from get_dataset_args(), got {type(args).__name__}")
    _check_args(args)
    if args.shuffle_seq:
        raise ValueError("shuffle_seq=True destroys the positions the ground-truth mask refers to; "
                         "use shuffle_seq=False")
    rng = np.random.RandomState(args.seed)
    templates = get_templates()
    per_class = args.num_samples // len(templates["y"])
    xs, ys, masks = [], [], []
    for label in templates["y"]:
        for _ in range(per_class):
            x, t, mask = _transform(templates["x"][label], templates["t"], args, rng)
            xs.append(x), ys.append(label), masks.append(mask)
    order = rng.permutation(len(ys))                           # shuffle the examples
    xs, ys, masks = np.stack(xs)[order], np.stack(ys)[order], np.stack(masks)[order]  # (N, T)
    t = t / xs.std()
    xs = (xs - xs.mean()) / xs.std()                           # centre and scale the whole set
    split = int(len(ys) * args.train_split)
    return {"x": xs[:split], "x_test": xs[split:], "y": ys[:split], "y_test": ys[split:],
            "t": t, "templates": templates, "mask": masks[:split], "mask_test": masks[split:],
            "args": asdict(args)}


# --- loading the course's pickle safely ---

class _RestrictedUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes and plain containers; anything else is refused before it runs."""
    _allowed = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
        ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "complex"),
        ("builtins", "str"), ("builtins", "bytes"), ("builtins", "bool"), ("collections", "OrderedDict"),
    }

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        if module.startswith("numpy") and name.endswith("DType"):   # numpy >= 1.25 dtype classes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from the pickle: only numpy arrays, dtypes and plain "
            "containers are allowed. The file is not a plain MNIST-1D data set; regenerate the data "
            "with mnist1d_utils.make_dataset() instead of loading it.")


def load_pickle_dataset(path: str | os.PathLike) -> dict:
    """Load an MNIST-1D pickle (such as the course's ``MNIST1D.pkl``) without executing code.

    Raises:
        FileNotFoundError: the file does not exist.
        pickle.UnpicklingError: the pickle asks for anything but numpy arrays and plain containers.
        ValueError: the file is empty, not a pickle, or not an MNIST-1D dict (the message names it).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no MNIST-1D pickle at {path!r}; generate the data with "
                                "mnist1d_utils.make_dataset() instead")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise ValueError(f"{str(path)!r} is empty (0 bytes): expected a pickled MNIST-1D data set; "
                         "generate the data with mnist1d_utils.make_dataset() instead")
    try:
        data = _RestrictedUnpickler(io.BytesIO(raw)).load()
    except pickle.UnpicklingError as err:
        if str(err).startswith("refusing to load"):
            raise                                           # the restricted unpickler's own refusal
        raise ValueError(f"{str(path)!r} is not a readable pickle ({err}): expected a pickled MNIST-1D data "
                         "set; generate the data with mnist1d_utils.make_dataset()") from err
    except (EOFError, ValueError, TypeError, IndexError, AttributeError, ImportError) as err:
        raise ValueError(f"{str(path)!r} is not a readable pickle ({type(err).__name__}: {err}): expected a "
                         "pickled MNIST-1D data set; generate the data with mnist1d_utils.make_dataset()") from err
    if not isinstance(data, dict) or not {"x", "y", "x_test", "y_test"} <= set(data):
        raise ValueError(f"{path!r} is not an MNIST-1D data set: expected a dict with x, y, x_test, "
                         f"y_test, got {type(data).__name__} with keys {sorted(data) if isinstance(data, dict) else '-'}")
    return data


# --- plotting ---

def plot_examples(x, y, mask=None, *, n=10, ncols=5, title=None):
    """Plot examples as lines with their ground-truth positions shaded.

    Args:
        x: float (N, T) or (N, T, 1) signals.
        y: int (N,) labels.
        mask: bool (N, T) ground truth, or None.
        n: how many examples (the first n).
    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    x = np.asarray(x).reshape(len(x), -1)                      # (N, T)
    n = min(n, len(x))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 1.9 * nrows), squeeze=False,
                             sharex=True, sharey=True)
    positions = np.arange(x.shape[1])
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        if mask is not None:
            _shade_mask(ax, mask[i])
        ax.plot(positions, x[i], color="k", lw=1.2)
        ax.set_title(f"label {y[i]}", fontsize=9)
    if mask is not None:
        axes.flat[0].legend(handles=[_mask_patch()], loc="upper left", fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _shade_mask(ax, mask, color="tab:green", alpha=0.18):
    """Shade the runs of True in a boolean (T,) mask on a line plot's x axis."""
    mask = np.asarray(mask, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        ax.axvspan(start - 0.5, stop - 0.5, color=color, alpha=alpha, lw=0)


def _mask_patch():
    from matplotlib.patches import Patch
    return Patch(color="tab:green", alpha=0.18, label="digit (ground truth)")


# --- the 1D CNN ---

@dataclass(frozen=True)
class TrainConfig(tu.TrainConfig):
    """Training recipe of the MNIST-1D CNN, chosen on a validation split of the 4000 training examples."""
    epochs: int = 60               # passes over the training split
    batch_size: int = 64
    learning_rate: float = 3e-3    # peak of the warm-up + cosine schedule
    weight_decay: float = 1e-4     # AdamW's decoupled weight decay
    max_shift: int = 4             # augmentation: circular shifts of up to +-max_shift positions
    width: int = 64                # channels of the first block (the second has twice as many)
    activation: str = "gelu"       # smooth, so IG's path integrand is smooth (see build_model)


def build_model(width: int = 64, seed: int = 0, activation: str = "gelu"):
    """A 1D CNN: two conv blocks (length 40, then 20), global average pooling, a linear classifier
    and a separate softmax layer, so the pre-softmax scores are one layer away.

    Smooth by design: GELU activations and average pooling make the score an analytic function of
    the input, so Integrated Gradients' path integral is smooth and Gauss-Legendre quadrature
    converges fast (with ReLU and max-pooling the integrand jumps at every kink).

    Input float32 (None, 40, 1); output probabilities (None, 10). The last conv feature map has
    length 20, so Grad-CAM localises to 2 positions.
    """
    import keras
    from keras import layers
    init = lambda i: keras.initializers.HeNormal(seed=seed + i)  # noqa: E731  one seed per layer

    def conv(h, filters, kernel, i, name):
        h = layers.Conv1D(filters, kernel, padding="same", use_bias=False, kernel_initializer=init(i),
                          name=name)(h)
        h = layers.BatchNormalization(name=f"{name}_bn")(h)
        return layers.Activation(activation, name=f"{name}_{activation}")(h)

    x = keras.Input((40, 1), name="signal")                             # (N, 40, 1)
    h = conv(x, width, 5, 0, "conv1")                                   # (N, 40, w)
    h = conv(h, width, 3, 1, "conv2")
    h = layers.AveragePooling1D(2, name="pool1")(h)                     # (N, 20, w)
    h = conv(h, 2 * width, 3, 2, "conv3")                               # (N, 20, 2w)
    h = conv(h, 2 * width, 3, 3, "conv4")
    h = conv(h, 2 * width, 3, 4, "conv5")                               # last conv: (N, 20, 2w)
    h = layers.GlobalAveragePooling1D(name="gap")(h)                    # (N, 2w)
    h = layers.Dropout(0.2, seed=seed, name="dropout")(h)
    logits = layers.Dense(10, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 5),
                          name="logits")(h)                             # (N, 10)
    prob = layers.Softmax(name="softmax")(logits)
    return keras.Model(x, prob, name="mnist1d_cnn")


def _augment_signals(xb: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Circular shifts of each signal (B, T, 1): MNIST-1D's own translation is circular."""
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(xb))
    idx = (np.arange(xb.shape[1])[None, :] - shifts[:, None]) % xb.shape[1]   # (B, T)
    return np.take_along_axis(xb, idx[..., None], axis=1)


def train(data: dict | None = None, config: TrainConfig = TrainConfig(), *, verbose: int = 0):
    """Train the CNN on the training split; the validation split chooses the epoch.

    The test split is not touched. Returns ``(model, info)`` (see :func:`xai.training.train.train_model`);
    info also holds the generator arguments that made ``data`` (``data_args``).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be mnist1d_utils.TrainConfig, got {type(config).__name__}")
    data = make_dataset() if data is None else data
    if "args" not in data:
        raise ValueError("data has no 'args' entry: pass the dict that make_dataset() returns, so the "
                         "saved model can record the generator arguments that made its data")
    x = np.asarray(data["x"])[..., None].astype(np.float32)             # (N, 40, 1)
    model, info = tu.train_model(
        lambda: build_model(config.width, config.seed, config.activation), x, np.asarray(data["y"]), config,
        augment=lambda xb, rng: _augment_signals(xb, rng, config.max_shift), verbose=verbose)
    info["data_args"] = dict(data["args"])
    return model, info


def save_model(model, info: dict, test_accuracy: float, path: str = "models/MNIST1D.keras") -> None:
    """Save the model portably and, beside it, a JSON with its provenance: the generator arguments
    that made its data, seed, recipe, validation and test accuracy, training time and library
    versions. Atomic (temp file + rename)."""
    tu.save_trained_model(model, info, path, test_accuracy, data_args=info["data_args"])
