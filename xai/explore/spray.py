"""SpRAy, spectral relevance analysis (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors
and assessing what machines really learn", Nat. Commun. 10:1096): cluster the maps of one class's
inputs, so that groups of inputs where the model looks at the same thing stand out, a shortcut
among them.

The steps of the paper: each map summed over channels (absolute by default: where the relevance
lies, not its sign), downsampled by block means to a small grid, scaled to unit maximum; a
symmetric k-nearest-neighbour graph over the maps; the normalised graph Laplacian's smallest
eigenvalues, whose largest gap (the eigengap) suggests the number of clusters; spectral
clustering (scikit-learn). A cluster is summarised by its mean map and its members.

Axis key: N maps, T signal length, H, W image size, C channels, G grid cells, E eigenvalues.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xai.core import check_number

__all__ = ["SprayResult", "spray_features", "spray", "cluster_agreement"]


@dataclass
class SprayResult:
    """``labels`` int (N,) each map's cluster; ``k`` the number of clusters; ``eigenvalues`` float
    (E,) the Laplacian's smallest, ascending; ``eigengap_k`` the count the largest gap suggests;
    ``mean_maps`` float32 (k, grid...) each cluster's mean downsampled map; ``sizes`` int (k,)."""
    labels: np.ndarray
    k: int
    eigenvalues: np.ndarray
    eigengap_k: int
    mean_maps: np.ndarray
    sizes: np.ndarray

    def members(self, cluster: int) -> np.ndarray:
        """The indices (into the maps given) of one cluster's members."""
        return np.flatnonzero(self.labels == cluster)


def spray_features(maps, *, grid: int | tuple = None, sign: str = "absolute") -> np.ndarray:
    """The maps as SpRAy clusters them: float32 (N, G), each a downsampled map scaled to maximum 1.

    Args:
        maps: float (N, T), (N, T, C), (N, H, W) or (N, H, W, C).
        grid: the downsampled size: an int (cells along each axis) or a tuple; default 20 for
            signals, 16 x 16 for images (or the maps' own size where smaller). A 3D array is read
            as signals with channels (N, T, C) when its last axis has at most 4 entries, else as
            images (N, H, W).
        sign: "absolute" (|map|) or "signed" (as stored).
    """
    maps = np.asarray(maps)
    if maps.dtype.kind not in "fiu" or maps.ndim not in (2, 3, 4) or len(maps) < 2:
        raise ValueError(f"maps must be numeric (N, T), (N, T, C), (N, H, W) or (N, H, W, C) with N >= 2, got "
                         f"{maps.dtype} {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps hold NaN or inf: explain those inputs again or leave them out")
    if sign not in ("absolute", "signed"):
        raise ValueError(f"sign must be 'absolute' or 'signed', got {sign!r}")
    maps = maps.astype(np.float32)
    if sign == "absolute":
        maps = np.abs(maps)
    image = maps.ndim == 4 or (maps.ndim == 3 and maps.shape[-1] > 4)     # (N, H, W[, C]) rather than (N, T, C)
    if maps.ndim == 4 or (maps.ndim == 3 and not image):
        maps = maps.sum(-1)                                                 # channels summed: (N, T) or (N, H, W)
    spatial = maps.shape[1:]
    if grid is None:
        grid = (min(20, spatial[0]),) if len(spatial) == 1 else tuple(min(16, s) for s in spatial)
    grid = (grid,) * len(spatial) if isinstance(grid, (int, np.integer)) else tuple(grid)
    if len(grid) != len(spatial) or any(not 1 <= g <= s for g, s in zip(grid, spatial)):
        raise ValueError(f"grid {grid} must give 1 to {spatial} cells along each of the maps' axes {spatial}")
    for axis, (g, s) in enumerate(zip(grid, spatial), start=1):            # block means along each axis
        edges = np.linspace(0, s, g + 1).round().astype(int)
        maps = np.add.reduceat(maps, edges[:-1], axis=axis) / np.diff(edges).reshape(
            (-1,) + (1,) * (len(spatial) - axis))
    flat = maps.reshape(len(maps), -1)                                      # (N, G)
    top = np.abs(flat).max(1, keepdims=True)
    return flat / np.where(top > 0, top, 1.0)


def spray(maps, n_clusters: int | None = None, *, grid=None, sign: str = "absolute", n_neighbors: int = 10,
          max_clusters: int = 10, seed: int = 0) -> SprayResult:
    """Spectral clusters of maps (one class's inputs), with the eigengap's suggestion.

    Args:
        maps: as :func:`spray_features` takes them; at least ``n_neighbors + 2``.
        n_clusters: the number of clusters; None: the eigengap's.
        n_neighbors: the k of the nearest-neighbour graph (the paper's affinity).
        max_clusters: the most clusters the eigengap may suggest.
        seed: for the clustering's k-means step.
    """
    from scipy.sparse.csgraph import laplacian
    from sklearn.cluster import SpectralClustering
    from sklearn.neighbors import kneighbors_graph
    features = spray_features(maps, grid=grid, sign=sign)
    n = len(features)
    n_neighbors = int(check_number("n_neighbors", n_neighbors, 1, integer=True))
    max_clusters = int(check_number("max_clusters", max_clusters, 2, integer=True))
    if n < n_neighbors + 2:
        raise ValueError(f"SpRAy needs more maps than n_neighbors + 1 ({n_neighbors + 1}), got {n}")
    graph = kneighbors_graph(features, n_neighbors, include_self=False)
    graph = 0.5 * (graph + graph.T)                                         # symmetric affinity
    eigenvalues = _smallest_eigenvalues(laplacian(graph.tocsr(), normed=True), min(max_clusters + 1, n - 1), seed)
    eigengap_k = int(np.argmax(np.diff(eigenvalues)) + 1)
    k = eigengap_k if n_clusters is None else int(check_number("n_clusters", n_clusters, 2, integer=True))
    if k >= n:
        raise ValueError(f"n_clusters {k} must be below the number of maps {n}")
    if k == 1:
        labels = np.zeros(n, np.int64)
    else:
        labels = SpectralClustering(k, affinity="precomputed",
                                    random_state=seed, assign_labels="kmeans").fit_predict(graph).astype(np.int64)
    grid_shape = _grid_shape(maps, features)
    mean_maps = np.stack([features[labels == c].mean(0).reshape(grid_shape) for c in range(k)]).astype(np.float32)
    return SprayResult(labels, k, eigenvalues.astype(np.float64), eigengap_k, mean_maps,
                       np.bincount(labels, minlength=k))


def _smallest_eigenvalues(lap, count: int, seed: int) -> np.ndarray:
    """The ``count`` smallest eigenvalues of a normalised Laplacian, ascending: dense below 500
    maps; above, the largest of I - L by Lanczos (they converge fast, the smallest of L do not)."""
    from scipy.sparse import identity
    from scipy.sparse.linalg import eigsh
    if lap.shape[0] <= 500:
        return np.sort(np.linalg.eigvalsh(lap.toarray()))[:count]
    v0 = np.random.default_rng(seed).uniform(0.5, 1.0, lap.shape[0])
    top = eigsh(identity(lap.shape[0]) - lap, k=count, which="LA", v0=v0, return_eigenvectors=False)
    return np.sort(np.clip(1.0 - top, 0.0, 2.0))


def _grid_shape(maps, features) -> tuple:
    maps = np.asarray(maps)
    image = maps.ndim == 4 or (maps.ndim == 3 and maps.shape[-1] > 4)
    if not image:
        return (features.shape[1],)
    side = int(round(np.sqrt(features.shape[1] * maps.shape[1] / maps.shape[2])))
    return (side, features.shape[1] // side)


def cluster_agreement(labels, truth, *, control_labels=None, n_boot: int = 1000, seed: int = 0) -> dict:
    """How well clusters isolate a known group (the marked inputs): the adjusted Rand index (ARI)
    between ``labels`` and ``truth``, with a 95 % bootstrap interval over the inputs; with
    ``control_labels`` (a control model's clusters of the same inputs) its ARI too and the
    difference, on the same drawn inputs.

    Args:
        labels, control_labels: int (N,) cluster of each input; truth: (N,) the known group (bool or int).
    """
    from sklearn.metrics import adjusted_rand_score
    labels, truth = np.asarray(labels).ravel(), np.asarray(truth).ravel()
    if labels.shape != truth.shape or len(labels) < 4:
        raise ValueError(f"labels and truth must be one value an input, the same length >= 4, got {labels.shape} and "
                         f"{truth.shape}")
    sides = {"model": labels}
    if control_labels is not None:
        control_labels = np.asarray(control_labels).ravel()
        if control_labels.shape != labels.shape:
            raise ValueError(f"control_labels has shape {control_labels.shape}, labels {labels.shape}: cluster the "
                             "same inputs")
        sides["control"] = control_labels
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in sides}
    for _ in range(int(check_number("n_boot", n_boot, 1, integer=True))):
        pick = rng.integers(0, len(truth), len(truth))
        for k, v in sides.items():
            draws[k].append(adjusted_rand_score(truth[pick], v[pick]))
    out = {}
    for k, v in sides.items():
        low, high = np.percentile(draws[k], [2.5, 97.5])
        out[k] = {"ari": float(adjusted_rand_score(truth, v)), "low": float(low), "high": float(high)}
    if control_labels is not None:
        diff = np.array(draws["model"]) - np.array(draws["control"])
        low, high = np.percentile(diff, [2.5, 97.5])
        out["difference"] = {"ari": out["model"]["ari"] - out["control"]["ari"], "low": float(low), "high": float(high)}
    out["n"] = int(len(truth))
    return out
