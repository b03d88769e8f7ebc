"""Agreement between two methods' maps of the same examples: rank correlation per example.

Maps are compared as given; pass ``np.abs(maps)`` for absolute agreement (the tables' convention).

Axis key: N examples, D positions.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["spearman"]


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation per example between two sets of maps (N, ...): float (N,).
    A constant map has no ranks to correlate: 0."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("maps have NaN or inf values; explain again or drop those examples")
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1), 0.0)
