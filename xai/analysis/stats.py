"""Statistics, written once: summaries, bootstrap intervals (paired, and with whole groups
resampled), Wilson's interval, Holm's adjustment.

Axis key: N examples (or pairs), G groups, B bootstrap draws.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import kendalltau, rankdata
from scipy.stats import t as student_t

__all__ = ["Z95", "summary", "stratified_sample", "paired_bootstrap", "paired_t_p_values", "holm", "wilson", "group_bootstrap",
           "auroc", "kendall_tau"]

Z95 = 1.959963984540054   # the normal quantile of a two-sided 95 % interval


def summary(values) -> dict:
    """Mean, standard error and count of per-example values."""
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "sem": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0,
            "n": int(len(v))}


def _check_draws(n_boot) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an int >= 1 (bootstrap draws), got {n_boot!r}")


# --- samples ---

def stratified_sample(y, per_class: int, seed, *, n_classes: int | None = None) -> np.ndarray:
    """Up to ``per_class`` examples of each class drawn without replacement, their indices sorted:
    int (M,). ``seed``: an int or a ``np.random.Generator`` (classes drawn in order 0..K-1)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be int labels (N,), got {y.dtype} {y.shape}")
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    k = int(y.max()) + 1 if n_classes is None else n_classes
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), min(per_class, int(np.sum(y == c))), replace=False)
                                   for c in range(k)]))


# --- paired differences ---

def paired_bootstrap(a, b, *, n_boot: int = 10000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Mean of the paired differences a - b (same examples) with a percentile bootstrap confidence
    interval: resample the examples with replacement ``n_boot`` times.

    Returns dict with ``mean``, ``low``, ``high``, ``n`` and ``excludes_zero``.
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"need two paired samples of the same length >= 2, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired values contain NaN or inf")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    _check_draws(n_boot)
    d = a - b                                                               # (N,)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 1000):                                    # bounded memory: (1000, N)
        idx = rng.integers(0, len(d), size=(min(1000, n_boot - start), len(d)))
        means[start:start + len(idx)] = d[idx].mean(1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"mean": float(d.mean()), "low": float(low), "high": float(high), "n": int(len(d)),
            "excludes_zero": bool(low > 0 or high < 0)}


def paired_t_p_values(differences: list[np.ndarray]) -> np.ndarray:
    """Two-sided p-values of paired t-tests, one per cell (its per-example differences): 1 where
    every difference is 0, 0 where they are all equal and not 0."""
    out = np.empty(len(differences))
    for k, d in enumerate(differences):
        d = np.asarray(d, np.float64)
        if d.ndim != 1 or len(d) < 2 or not np.isfinite(d).all():
            raise ValueError(f"cell {k}: a paired t-test needs finite differences (N,) with N >= 2, got shape {d.shape}")
        sd = d.std(ddof=1)
        if sd == 0:
            out[k] = 1.0 if d.mean() == 0 else 0.0
        else:
            out[k] = 2 * student_t.sf(abs(d.mean()) / (sd / np.sqrt(len(d))), len(d) - 1)
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values (family-wise error control, any dependence)."""
    p = np.asarray(p, np.float64)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(p)
    out[order] = adjusted
    return out


# --- intervals of a proportion and of a mean over groups ---

def wilson(correct: int, n: int, z: float = Z95) -> list[float] | None:
    """Wilson score interval of a proportion (95 % by default); None for n = 0."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0 or not 0 <= correct <= n:
        raise ValueError(f"wilson needs 0 <= correct <= n, integers, got correct={correct!r}, n={n!r}")
    if n == 0:
        return None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def group_bootstrap(values: np.ndarray, groups: np.ndarray, n_boot: int = 2000, seed: int = 0,
                    min_groups: int = 3) -> list[float] | None:
    """95 % percentile interval of the mean of ``values`` over tiles, with whole groups resampled
    (the tiles of one group are not independent; the groups are taken to be). float or bool (N,)
    values, str (N,) groups. None with fewer than ``min_groups`` groups."""
    values, groups = np.asarray(values, float), np.asarray(groups)
    if values.ndim != 1 or values.shape != groups.shape or not np.isfinite(values).all():
        raise ValueError(f"values and groups must be (N,) each, values finite, got {values.shape} and {groups.shape}")
    _check_draws(n_boot)
    names, index = np.unique(groups, return_inverse=True)
    if len(names) < min_groups:
        return None
    total = np.bincount(index, weights=np.asarray(values, float))           # (G,) sum of values a group
    n = np.bincount(index).astype(float)                                   # (G,) tiles a group
    draws = np.random.default_rng(seed).integers(0, len(names), (n_boot, len(names)))   # (B, G)
    means = total[draws].sum(1) / n[draws].sum(1)                          # (B,)
    return [float(v) for v in np.percentile(means, [2.5, 97.5])]


# --- separation and rank agreement ---

def auroc(positive, negative) -> float:
    """Area under the ROC curve of scores that should be higher for ``positive`` than for
    ``negative`` (the Mann-Whitney statistic, ties counted half): the chance that a random positive
    outscores a random negative. 0.5: no separation."""
    pos, neg = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"auroc needs scores on both sides, got {len(pos)} positive and {len(neg)} negative")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("auroc's scores contain NaN or inf")
    ranks = rankdata(np.concatenate([pos, neg]))                            # mid-ranks for ties
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def kendall_tau(a, b) -> float:
    """Kendall's tau-b between two rankings' scores of the same items (ties allowed): in [-1, 1];
    NaN (undefined) where either side has no two different scores."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"kendall_tau needs two score vectors of the same length >= 2, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("kendall_tau's scores contain NaN or inf")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kendalltau(a, b).statistic)
