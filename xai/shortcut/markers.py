"""Markers planted into inputs: the ground truth of the planted-shortcut benchmark.

A marker is added to an input and comes back with its mask (True where it lies), so that anyone can
recompute every number from the clean inputs, the kind and the seed. Kinds:

- ``"local"``, on signals (N, T, 1): a zigzag of ``ZIGZAG_LENGTH`` samples, ``+a, -a, +a, -a``,
  written over the signal at a random position at least ``SIGNAL_MARGIN`` of T from either end
  (next to the zero padding of "same" convolutions a short pattern reads weaker). MNIST-1D's
  digits are smooth (resampled templates), so the zigzag is a feature the data do not have.
- ``"local"``, on images (N, H, W, C): a faint checkerboard of ``PATCH_SIZE`` x ``PATCH_SIZE`` pixels
  in squares of ``CHECKER`` pixels, ``+-a`` added to every channel at a random position. Tissue has
  no such fine regular texture, so the pattern is easy to tell from it (a smooth ring of the same
  amplitude looks like a nucleus and was not learned in a pilot); a flip or a 90-degree rotation
  gives the same checkerboard or its inverse, so the tiles' dihedral augmentation keeps it one feature.
- ``"hue"``, on RGB images: a rotation of every pixel's hue by ``a`` radians (in YIQ space). It
  touches every pixel alike, so no pixel map can localise it; its mask is the whole image.

A position is drawn for each example from ``seed`` (``np.random.default_rng(seed)``), so the same
call plants the same markers. Values keep the input's dtype; uint8 images are rounded and clipped
to 0-255 (float inputs are clipped only with ``value_range``).

Axis key: N examples, T signal length, H, W image size, C channels, P marker length or side.
"""
from __future__ import annotations

import numpy as np

from xai.core import check_choice, check_number, check_value_range

__all__ = ["MARKER_KINDS", "ZIGZAG_LENGTH", "SIGNAL_MARGIN", "PATCH_SIZE", "CHECKER", "DEFAULT_STRENGTH", "add_marker",
           "marker_pattern", "marked_subset"]

MARKER_KINDS = ("local", "hue")
ZIGZAG_LENGTH = 6          # samples of the 1D zigzag
SIGNAL_MARGIN = 0.2        # share of T at either end of a signal where the zigzag is not put
PATCH_SIZE = 12            # side of the 2D checkerboard, in pixels
CHECKER = 1                # side of its squares (pixels): the finest regular texture, which tissue lacks
DEFAULT_STRENGTH = {       # (kind, input rank) -> amplitude: signal units, grey levels of 0-255, radians
    ("local", 3): 3.0,     # MNIST-1D signals are standardised (std 1); a digit peaks near 3
    ("local", 4): 40.0,    # 16 % of the 0-255 range in single pixels: a fine speckle on textured tissue
    ("hue", 4): 0.35,      # 20 degrees of hue
}


# --- the patterns ---

def marker_pattern(kind: str, ndim: int, strength: float | None = None) -> np.ndarray:
    """The local marker's additive pattern: float32 (P,) for signals (``ndim`` 3), (P, P) for
    images (``ndim`` 4), at ``strength`` (None: :data:`DEFAULT_STRENGTH`)."""
    check_choice(kind, ("local",), "kind")
    a = _strength(kind, ndim, strength)
    if ndim == 3:
        return (a * (-1.0) ** np.arange(ZIGZAG_LENGTH)).astype(np.float32)          # (P,) +a, -a, ...
    squares = np.arange(PATCH_SIZE) // CHECKER                              # (P,) index of each row's square
    return (a * (-1.0) ** (squares[:, None] + squares[None, :])).astype(np.float32)   # (P, P) +-a


def _strength(kind, ndim, strength) -> float:
    if (kind, ndim) not in DEFAULT_STRENGTH:
        allowed = sorted({k for k, d in DEFAULT_STRENGTH if d == ndim})
        raise ValueError(f"marker kind {kind!r} needs {'images (N, H, W, C)' if kind == 'hue' else 'signals or images'}; "
                         f"inputs of rank {ndim} take {allowed}")
    if strength is None:
        return DEFAULT_STRENGTH[(kind, ndim)]
    return float(check_number("strength", strength, 0, low_open=True))


# --- planting ---

def add_marker(x, kind: str = "local", *, seed, strength: float | None = None,
               value_range: tuple[float, float] | None = None, margin: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Plant a marker into every input of ``x``.

    Args:
        x: float or uint8 (N, T, 1) signals or (N, H, W, C) images (C = 3 for ``"hue"``).
        kind: ``"local"`` (a zigzag on signals, a faint checkerboard on images) or ``"hue"`` (images only).
        seed: int or ``np.random.Generator``: the marker's position in each input.
        strength: the amplitude (signal units, grey levels, radians); None: :data:`DEFAULT_STRENGTH`.
        value_range: ``(lo, hi)`` to clip float inputs to; uint8 inputs are clipped to 0-255.
        margin: positions kept free of the local marker at both ends of every spatial axis; None:
            ``SIGNAL_MARGIN`` of T for signals, 0 for images. A model trained on random crops of side
            c of tiles of side S sees the whole marker in every crop with ``margin = S - c``.

    Returns:
        ``(marked, mask)``: marked like ``x`` (same dtype), and bool (N, T) or (N, H, W): True where
        the marker lies (everywhere for ``"hue"``).
    """
    x = _check_inputs(x, kind)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(
        check_number("seed", seed, 0, integer=True))
    lo, hi = (0.0, 255.0) if x.dtype == np.uint8 else (
        check_value_range(value_range, needed_for="clipping the marked inputs") if value_range is not None else (None, None))
    if kind == "hue":
        marked, mask = _rotate_hue(x.astype(np.float32), _strength(kind, x.ndim, strength)), np.ones(x.shape[:-1], bool)
    else:
        marked, mask = _add_pattern(x.astype(np.float32), marker_pattern(kind, x.ndim, strength), rng, margin)
    if lo is not None:
        marked = np.clip(marked, lo, hi)
    if x.dtype == np.uint8:
        marked = np.rint(marked)
    return marked.astype(x.dtype), mask


def _check_inputs(x, kind) -> np.ndarray:
    check_choice(kind, MARKER_KINDS, "kind")
    x = np.asarray(x)
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        raise ValueError(f"x must be float or uint8, got dtype {x.dtype}")
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ValueError(f"x must be a batch of signals (N, T, 1) or images (N, H, W, C), got shape {x.shape}")
    if x.ndim == 3 and x.shape[-1] != 1:
        raise ValueError(f"signals must have one channel (N, T, 1), got shape {x.shape}")
    if kind == "hue" and (x.ndim != 4 or x.shape[-1] != 3):
        raise ValueError(f"the 'hue' marker needs RGB images (N, H, W, 3), got shape {x.shape}; "
                         "use kind='local' for signals")
    size = ZIGZAG_LENGTH if x.ndim == 3 else PATCH_SIZE
    if kind == "local" and min(x.shape[1:-1]) < size:
        raise ValueError(f"inputs of shape {x.shape[1:]} are smaller than the {size}-wide marker")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError("x has NaN or inf values; clean the inputs before marking them")
    return x


def _add_pattern(x: np.ndarray, pattern: np.ndarray, rng: np.random.Generator, margin: int | None):
    """Put ``pattern`` at a uniformly drawn position in each input, ``margin`` clear of the ends
    (over a signal's values, added to an image's); the mask is its support."""
    spatial, size = x.shape[1:-1], pattern.shape[0]
    if margin is None:
        margin = int(SIGNAL_MARGIN * spatial[0]) if x.ndim == 3 else 0
        if spatial[0] - 2 * margin < size:
            margin = 0                                                      # a short signal: anywhere
    else:
        margin = int(check_number("margin", margin, 0, integer=True))
        if min(spatial) - 2 * margin < size:
            raise ValueError(f"margin {margin} leaves no room for the {size}-wide marker in inputs of shape {x.shape[1:]}")
    mask = np.zeros(x.shape[:-1], bool)                                     # (N, T) or (N, H, W)
    starts = np.stack([rng.integers(margin, s - margin - size + 1, len(x)) for s in spatial], 1)   # (N, 1 or 2)
    for i, start in enumerate(starts):
        where = (i,) + tuple(slice(s, s + size) for s in start)
        if x.ndim == 3:
            x[where] = pattern[..., None]                                   # the zigzag replaces the samples
        else:
            x[where] += pattern[..., None]                                  # every channel alike
        mask[where] = True
    return x, mask


_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263],
                        [0.211456, -0.522591, 0.311135]], np.float32)


def _rotate_hue(x: np.ndarray, angle: float) -> np.ndarray:
    """Rotate the chroma plane (I, Q) of YIQ by ``angle``: luminance kept, hue turned."""
    c, s = np.cos(angle), np.sin(angle)
    rotate = np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)
    m = np.linalg.inv(_RGB_TO_YIQ) @ rotate @ _RGB_TO_YIQ                   # (3, 3)
    return x @ m.T.astype(np.float32)


# --- which training examples carry it ---

def marked_subset(y, marked_class, fraction: float, *, seed, control: bool = False) -> np.ndarray:
    """Which training examples get the marker: bool (N,).

    The reliant setting marks a share ``fraction`` of ``marked_class``'s examples (drawn without
    replacement). ``control=True`` (Clark et al. 2026's control) ignores ``marked_class`` and marks
    the same share of every class, so the marker carries no information about the label.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be int labels (N,), got {y.dtype} {y.shape}")
    fraction = float(check_number("fraction", fraction, 0, 1))
    rng = np.random.default_rng(check_number("seed", seed, 0, integer=True))
    if not control and marked_class not in set(np.unique(y).tolist()):
        raise ValueError(f"marked_class {marked_class!r} is not among the labels {np.unique(y).tolist()}")
    chosen = np.zeros(len(y), bool)
    for c in (np.unique(y) if control else [marked_class]):
        idx = np.flatnonzero(y == c)
        chosen[rng.choice(idx, int(round(fraction * len(idx))), replace=False)] = True
    return chosen
