"""The grid pointing game (GridPG, Rao et al., CVPR 2022) on a model: mosaics of images of distinct
classes, each classified right and confidently on its own, fed whole to the same network (a fully
convolutional one with global pooling takes any size), and each cell's class explained; a method
scores the share of its positive relevance that falls in that cell (``grid_pointing_game``).

Conventions: maps one value a pixel (IG-like maps summed over channels, signed, then their
positive part: the share of *positive* relevance); the explained class's logit as each method's
default score.

Axis key: N images, G grids, Q cells a grid (grid ** 2), H, W image size, C channels, K classes.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from xai.analysis.stats import Z95, summary
from xai.core import check_input, predict_scores
from xai.metrics.localisation import grid_inputs, grid_pointing_game

__all__ = ["at_input_size", "grid_pointing", "share_interval"]


def at_input_size(model, shape: tuple) -> keras.Model:
    """The same network, with the same weights, for inputs of ``shape`` (H, W, C): a functional
    model whose layers do not fix the size (convolutions, pooling, global pooling, dense after it).
    Raises ValueError, naming the layer, where the network cannot take that size."""
    try:
        big = keras.models.clone_model(model, input_tensors=keras.Input(tuple(shape)))
        big.set_weights(model.get_weights())
    except Exception as err:       # a Flatten or a fixed Reshape: the size is part of the network
        raise ValueError(f"model {model.name!r} does not take inputs of shape {tuple(shape)}: {type(err).__name__}: "
                         f"{err}. GridPG needs a fully convolutional network with global pooling") from err
    return big


def grid_pointing(model, x, y, functions: dict[str, Callable], *, n_grids: int = 32, grid: int = 2,
                  confidence: float = 0.99, seed: int = 0, batch_size: int = 64) -> dict:
    """GridPG of each method of ``functions`` on ``n_grids`` mosaics of ``x``'s images.

    Args:
        model: a Keras image classifier whose network takes larger inputs (:func:`at_input_size`).
        x: float32 (N, H, W, C) as the model takes them; y: int (N,) their true classes.
        functions: name -> ``f(model, x, classes) -> maps`` (N, 2H, 2W) or shaped like x.
        confidence: an image goes into grids only if the model gets it right with at least this
            probability (Rao et al.: 0.99).
    Returns:
        ``scores``: name -> float (G * Q,) the explained cell's share (cells row-major, grid by grid);
        ``summary``: name -> mean and 95 % interval; ``classes``, ``sources`` int (G, Q); ``usable``;
        ``grid_top_in_grid``: the share of grids whose top class is one of its cells' classes.
    """
    x = check_input(model, x)
    y = np.asarray(y)
    if y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise ValueError(f"y must be int labels (N,) = ({len(x)},), got {y.dtype} {y.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    prob = predict_scores(model, x, score="probability", batch_size=batch_size)           # (N, K)
    usable = (prob.argmax(-1) == y) & (prob.max(-1) >= confidence)
    grids, classes, sources = grid_inputs(x, y, usable, n_grids=n_grids, grid=grid, seed=seed)
    big = at_input_size(model, grids.shape[1:])
    top = predict_scores(big, grids, score="probability", batch_size=batch_size).argmax(-1)  # (G,)
    cells = np.tile(np.arange(grid * grid), n_grids)                                       # (G * Q,)
    repeated = np.repeat(grids, grid * grid, axis=0)                                       # (G * Q, 2H, 2W, C)
    scores = {}
    for name, f in functions.items():
        maps = np.asarray(f(big, repeated, classes.ravel()), np.float64)
        if maps.shape == repeated.shape:
            maps = maps.sum(-1)                                                             # signed, over channels
        scores[name] = grid_pointing_game(maps, cells, grid)
    return {"scores": scores, "summary": {name: share_interval(s, grid * grid) for name, s in scores.items()},
            "classes": classes, "sources": sources, "usable": int(usable.sum()), "n_grids": n_grids, "grid": grid,
            "chance": 1.0 / grid ** 2, "grid_top_in_grid": float(np.mean([t in c for t, c in zip(top, classes)])),
            "confidence": confidence}


def share_interval(scores, cells_per_grid: int) -> dict:
    """Mean of the cells' shares with a normal 95 % interval over the grids: a grid's cells share
    one mosaic, so each grid's finite cells are averaged first and the grids are the units (tiles
    may recur across grids, so the interval is still somewhat narrow). ``scores``: float (G * Q,),
    grid by grid; NaN where a map had no positive relevance (left out, counted). Fewer than 2
    grids with a score give a NaN interval."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 1 or cells_per_grid < 1 or len(scores) % cells_per_grid:
        raise ValueError(f"scores must be (G * {cells_per_grid},), grid by grid, got shape {scores.shape}")
    by_grid = scores.reshape(-1, cells_per_grid)
    finite = np.isfinite(by_grid)
    counts = finite.sum(1)
    means = np.where(finite, by_grid, 0.0).sum(1)[counts > 0] / counts[counts > 0]          # each grid's mean
    if len(means) < 2:
        out = {"mean": float(means.mean()) if len(means) else float("nan"), "sem": float("nan"), "n": int(len(means))}
    else:
        out = summary(means)
    return dict(out, interval95=[out["mean"] - Z95 * out["sem"], out["mean"] + Z95 * out["sem"]], unit="grid",
                without_positive_relevance=int((~finite).sum()))
