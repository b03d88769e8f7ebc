"""Localisation: how much of a map falls on where the evidence is known to be (a ground-truth mask:
MNIST-1D's digit, a planted marker), how much of it sits on an image's frame, and the network's own
marks in it: relevance that piles up in the centre (valid convolutions see border pixels fewer
times) or alternates between neighbouring pixels (strided layers' checkerboard).

Conventions: maps are compared in *absolute* value by default (``absolute=True``), for every
method; signed IG is reported separately where it says more.

Axis key: N examples, T signal length, H, W image size, C channels, D positions (T or H*W).
"""
from __future__ import annotations

import numpy as np

from xai.maps import saliency_positions

__all__ = ["relevance_mass_accuracy", "relevance_rank_accuracy", "pointing_game", "band_area_share", "border_mass_share",
           "centre_to_outside_ratio", "period_two_alternation", "grid_inputs", "grid_pointing_game"]


# --- against a ground-truth mask ---

def _relevance_and_masks(maps, masks, x_shape, absolute):
    """Maps and ground truth as (N, D) relevance and (N, D) bool, checked to match."""
    masks = np.asarray(masks)
    if masks.dtype != bool:
        raise ValueError(f"masks must be boolean (True on the ground truth), got dtype {masks.dtype}; "
                         "convert with masks.astype(bool) if 0/1 is what you mean")
    if x_shape is None:
        maps = np.asarray(maps)
        x_shape = maps.shape + (1,)                                         # maps are one value a position
    rel = saliency_positions(maps, x_shape, absolute=absolute)              # (N, D)
    if masks.shape != tuple(x_shape[:-1]):
        raise ValueError(f"masks have shape {masks.shape}, expected {tuple(x_shape[:-1])}: one boolean a "
                         "position, one mask per map")
    return rel, masks.reshape(len(masks), -1)


def relevance_mass_accuracy(maps, masks, x_shape=None, *, absolute: bool = True) -> np.ndarray:
    """Share of the relevance mass that falls inside the ground truth (Arras et al. 2022): float (N,).

    With ``absolute`` (the default, as for every method in the tables) the mass is |map|; otherwise
    only the positive relevance counts. An example with no mass scores 0. ``x_shape``: the inputs'
    shape when the maps are shaped like x (IG); None when maps are one value a position.
    """
    rel, masks = _relevance_and_masks(maps, masks, x_shape, absolute)
    pos = np.maximum(rel, 0)
    total = pos.sum(1)
    return np.where(total > 0, (pos * masks).sum(1) / np.where(total > 0, total, 1), 0.0)


def relevance_rank_accuracy(maps, masks, x_shape=None, *, absolute: bool = True) -> np.ndarray:
    """Share of the map's top-K positions that fall inside the ground truth, K the mask's size
    (Arras et al. 2022): float (N,). Positions are ranked by |map| (``absolute``) or by positive
    relevance (negative values count as 0, as in :func:`relevance_mass_accuracy`). Positions tied at
    the K-th value share the places left by their inside share, so the score does not depend on
    where the mask lies: a constant map scores the mask's area share. An empty mask scores 0."""
    rel, masks = _relevance_and_masks(maps, masks, x_shape, absolute)
    rel = np.maximum(rel, 0)
    scores = np.zeros(len(rel))
    for i, (r, m) in enumerate(zip(rel, masks)):
        k = int(m.sum())
        if k == 0:
            continue
        kth = np.partition(r, len(r) - k)[len(r) - k]                      # the K-th largest value
        above, tied = r > kth, r == kth
        left = k - int(above.sum())                                         # places the tied group fills
        scores[i] = ((above & m).sum() + left * (tied & m).sum() / tied.sum()) / k
    return scores


def pointing_game(maps, masks, x_shape=None, *, absolute: bool = True) -> np.ndarray:
    """1 where the map's maximum (of |map| by default) lies inside the ground truth (Zhang et al.
    2018), else 0: (N,). Ties count as a hit only if every tied maximum is inside."""
    rel, masks = _relevance_and_masks(maps, masks, x_shape, absolute)
    top = rel == rel.max(1, keepdims=True)
    return np.all(~top | masks, axis=1).astype(np.float32)


# --- a map's share on the image's frame ---

def band_area_share(spatial_shape, band: int) -> float:
    """Share of an (H, W) image's area in its outer band of ``band`` pixels (12 of 150: 0.294)."""
    h, w = (int(v) for v in spatial_shape)
    if isinstance(band, bool) or not (isinstance(band, (int, np.integer)) and 0 < band and 2 * band < min(h, w)):
        raise ValueError(f"band must be an int in (0, {min(h, w) // 2}) for a {h} x {w} image, got {band!r}")
    return 1.0 - (h - 2 * band) * (w - 2 * band) / (h * w)


def border_mass_share(maps, band: int = 12) -> np.ndarray:
    """Share of each map's mass that lies in the image's outer band of ``band`` pixels: float64 (N,).

    A map that attends to the tile's frame rather than its content scores well above
    :func:`band_area_share`. ``maps``: non-negative float (N, H, W), such as Grad-CAM's. A map with
    no mass (all zeros) has no share: NaN, so that summaries skip it instead of counting it as 0.
    """
    m = np.asarray(maps, np.float64)
    if m.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("maps contain NaN or inf; explain again or drop those examples")
    if (m < 0).any():
        raise ValueError("maps must be non-negative (mass); pass Grad-CAM-like maps or np.abs(maps)")
    band_area_share(m.shape[1:], band)                                    # checks band
    total = m.sum(axis=(1, 2))                                            # (N,)
    inner = m[:, band:-band, band:-band].sum(axis=(1, 2))                 # (N,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (total - inner) / total, np.nan)


# --- GridPG (Rao et al., CVPR 2022) ---

def grid_inputs(x, y, usable, *, n_grids: int, grid: int = 2, seed=0):
    """Grids of ``grid`` x ``grid`` images of distinct classes, for the grid pointing game: a fully
    convolutional model with global pooling takes the (grid H, grid W) mosaic as an input, and the
    evidence for each cell's class lies in that cell by construction.

    Args:
        x: (N, H, W, C) images; y: int (N,) their classes.
        usable: bool (N,): images that may go into a grid (GridPG: those the model classifies
            right and confidently; the caller decides, e.g. probability >= 0.99).
        n_grids: how many grids; grid: cells a side (grid ** 2 distinct classes must be usable).
        seed: int or Generator: which classes and images (drawn without replacement within a grid).
    Returns:
        ``(grids (G, grid H, grid W, C) of x's dtype, classes int (G, grid ** 2), sources int (G, grid ** 2))``,
        cells in row-major order (cell q at row q // grid, column q % grid).
    """
    x, y, usable = np.asarray(x), np.asarray(y), np.asarray(usable)
    if x.ndim != 4 or y.shape != (len(x),) or y.dtype.kind not in "iu" or usable.shape != (len(x),) or usable.dtype != bool:
        raise ValueError(f"grid_inputs needs images (N, H, W, C), int y (N,) and bool usable (N,), got {x.shape}, "
                         f"{y.shape} and {usable.dtype} {usable.shape}")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid must be an int >= 2, got {grid!r}")
    if isinstance(n_grids, bool) or not isinstance(n_grids, int) or n_grids < 1:
        raise ValueError(f"n_grids must be an int >= 1, got {n_grids!r}")
    pools = {c: np.flatnonzero(usable & (y == c)) for c in np.unique(y[usable])}
    if len(pools) < grid * grid:
        raise ValueError(f"a {grid} x {grid} grid needs {grid * grid} classes with usable images; "
                         f"there are {len(pools)} ({sorted(int(c) for c in pools)})")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    names = np.array(sorted(pools))
    classes = np.stack([rng.choice(names, grid * grid, replace=False) for _ in range(n_grids)])    # (G, Q)
    sources = np.array([[rng.choice(pools[c]) for c in row] for row in classes])                   # (G, Q)
    h, w = x.shape[1:3]
    grids = np.zeros((n_grids, grid * h, grid * w, x.shape[3]), x.dtype)
    for q in range(grid * grid):
        r, c = divmod(q, grid)
        grids[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = x[sources[:, q]]
    return grids, classes.astype(np.int64), sources.astype(np.int64)


def grid_pointing_game(maps, cell, grid: int = 2) -> np.ndarray:
    """GridPG's score: the share of a map's positive relevance inside the grid cell whose class it
    explains; float64 (M,). 1 / grid ** 2 is what a map blind to the cells scores on average. A map
    with no positive relevance has no share: NaN.

    Args:
        maps: float (M, grid H, grid W): one value a pixel (sum IG's channels, signed, first).
        cell: int (M,): the explained cell of each map, row-major (as :func:`grid_inputs`).
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"grid must be an int >= 2, got {grid!r}")
    m = np.asarray(maps, np.float64)
    cell = np.asarray(cell)
    if m.ndim != 3 or m.shape[1] % grid or m.shape[2] % grid:
        raise ValueError(f"maps must be (M, H, W) with H and W multiples of grid={grid}, got {m.shape}")
    if cell.shape != (len(m),) or cell.dtype.kind not in "iu" or (cell < 0).any() or (cell >= grid * grid).any():
        raise ValueError(f"cell must be int (M,) = ({len(m)},) in [0, {grid * grid}), got {cell.dtype} {cell.shape}")
    if not np.isfinite(m).all():
        raise ValueError("maps contain NaN or inf; explain again or drop those examples")
    positive = np.maximum(m, 0)
    h, w = m.shape[1] // grid, m.shape[2] // grid
    cells = positive.reshape(len(m), grid, h, grid, w).sum(axis=(2, 4)).reshape(len(m), grid * grid)   # (M, Q)
    total = cells.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, cells[np.arange(len(m)), cell] / total, np.nan)


# --- the network's own marks ---

def _mass_maps(maps, name: str) -> np.ndarray:
    m = np.asarray(maps, np.float64)
    if m.ndim != 3 or len(m) == 0:
        raise ValueError(f"{name}: maps must be (N, H, W) with N >= 1, got shape {m.shape}; sum IG's channels "
                         "first (np.abs(ig).sum(-1))")
    if not np.isfinite(m).all():
        raise ValueError(f"{name}: maps contain NaN or inf; explain again or drop those examples")
    if (m < 0).any():
        raise ValueError(f"{name}: maps must be non-negative (mass); pass np.abs(maps)")
    return m


def centre_to_outside_ratio(maps, inner: int) -> float:
    """Mean relevance inside the central ``inner`` x ``inner`` square over the mean outside it, pooled
    over the maps: 1 where relevance does not care where it is. A fully convolutional network with
    valid convolutions sees a border pixel fewer times than a central one, which shows as a ratio
    well above 1 on texture (the committed HMT model, trained on 112 px crops: 3.9 on 150 px tiles).

    Args:
        maps: non-negative float (N, H, W), e.g. ``np.abs(ig).sum(-1)``.
        inner: the side of the central square, 0 < inner < min(H, W).
    """
    m = _mass_maps(maps, "centre_to_outside_ratio")
    h, w = m.shape[1:]
    if isinstance(inner, bool) or not (isinstance(inner, (int, np.integer)) and 0 < inner < min(h, w)):
        raise ValueError(f"inner must be an int in (0, {min(h, w)}) for {h} x {w} maps, got {inner!r}")
    top, left = (h - inner) // 2, (w - inner) // 2
    centre = np.zeros((h, w), bool)
    centre[top:top + inner, left:left + inner] = True                     # (H, W)
    outside = m[:, ~centre].mean()
    if outside == 0:
        raise ValueError("centre_to_outside_ratio: the maps have no mass outside the centre; the ratio is undefined")
    return float(m[:, centre].mean() / outside)


def period_two_alternation(maps, axis: int = 2) -> float:
    """How much the mean relevance profile alternates between neighbouring pixels: the mean over
    positions j of ``|p_j - (p_{j-1} + p_{j+1}) / 2| / ((p_{j-1} + p_{j+1}) / 2)``, where p is the mean
    of the maps over examples and the other axis (``axis`` 2: the column profile; 1: the rows). A
    straight ramp scores 0 and a, b, a, b scores the mean of ``|b - a| / a`` and ``|b - a| / b``: a stride-2
    layer's checkerboard
    (the committed HMT model's columns: 0.51).

    Args:
        maps: non-negative float (N, H, W); axis: 1 or 2.
    """
    m = _mass_maps(maps, "period_two_alternation")
    if axis not in (1, 2):
        raise ValueError(f"axis must be 1 (rows) or 2 (columns), got {axis!r}")
    profile = m.mean(axis=(0, 3 - axis))                                   # (W,) or (H,)
    if len(profile) < 3:
        raise ValueError(f"period_two_alternation needs at least 3 positions along axis {axis}, got {len(profile)}")
    neighbours = (profile[:-2] + profile[2:]) / 2                          # (W - 2,)
    if (neighbours <= 0).any():
        raise ValueError("period_two_alternation: the profile has zeros; the relative alternation is undefined")
    return float(np.mean(np.abs(profile[1:-1] - neighbours) / neighbours))
