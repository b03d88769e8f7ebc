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

import warnings
from dataclasses import dataclass

import numpy as np

from xai.core import check_number

__all__ = ["SprayResult", "ConstantMaps", "spray_features", "downsampled", "spray", "cluster_agreement"]


class ConstantMaps(ValueError):
    """Every map is the same after downsampling (e.g. Grad-CAM's all-zero maps where no feature points
    to the class): there is nothing to cluster."""


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


def spray_features(maps, *, grid=None, sign: str = "absolute", kind: str = "auto") -> np.ndarray:
    """The maps as SpRAy clusters them: float32 (N, G), each a downsampled map scaled to maximum 1
    (see :func:`downsampled` for the grid)."""
    return downsampled(maps, grid=grid, sign=sign, kind=kind)[0]


def downsampled(maps, *, grid=None, sign: str = "absolute", kind: str = "auto") -> tuple[np.ndarray, tuple]:
    """``(features float32 (N, G), grid tuple)``: each map summed over channels, block-meaned to the
    grid and scaled to maximum 1.

    Args:
        maps: float (N, T), (N, T, C), (N, H, W) or (N, H, W, C).
        grid: the downsampled size: an int (cells along each axis) or a tuple; default 20 for
            signals, 16 x 16 for images (or the maps' own size where smaller).
        sign: "absolute" (|map|) or "signed" (as stored).
        kind: "signal", "image" or "auto": a 3D array is then read as signals with channels
            (N, T, C) when its last axis has at most 4 entries, else as images (N, H, W); say
            "signal" for signals of more channels (a 12-lead recording).
    """
    maps = np.asarray(maps)
    if maps.dtype.kind not in "fiu" or maps.ndim not in (2, 3, 4) or len(maps) < 2:
        raise ValueError(f"maps must be numeric (N, T), (N, T, C), (N, H, W) or (N, H, W, C) with N >= 2, got "
                         f"{maps.dtype} {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps hold NaN or inf: explain those inputs again or leave them out")
    if sign not in ("absolute", "signed"):
        raise ValueError(f"sign must be 'absolute' or 'signed', got {sign!r}")
    if kind not in ("auto", "signal", "image"):
        raise ValueError(f"kind must be 'auto', 'signal' or 'image', got {kind!r}")
    maps = maps.astype(np.float32)
    if sign == "absolute":
        maps = np.abs(maps)
    if kind == "auto":
        kind = "image" if maps.ndim == 4 or (maps.ndim == 3 and maps.shape[-1] > 4) else "signal"
    spatial_ndim = 1 if kind == "signal" else 2
    if maps.ndim == spatial_ndim + 2:
        maps = maps.sum(-1)                                                 # channels summed: (N, T) or (N, H, W)
    if maps.ndim != spatial_ndim + 1:
        raise ValueError(f"maps of {kind}s must be (N, {'T' if kind == 'signal' else 'H, W'}) with or without channels, "
                         f"got {maps.shape}")
    spatial = maps.shape[1:]
    grid = _checked_grid(grid, spatial, kind)
    for axis, (g, s) in enumerate(zip(grid, spatial), start=1):            # block means along each axis
        edges = np.linspace(0, s, g + 1).round().astype(int)
        maps = np.add.reduceat(maps, edges[:-1], axis=axis) / np.diff(edges).reshape(
            (-1,) + (1,) * (len(spatial) - axis))
    flat = maps.reshape(len(maps), -1)                                      # (N, G)
    top = np.abs(flat).max(1, keepdims=True)
    return flat / np.where(top > 0, top, 1.0), grid


def _checked_grid(grid, spatial: tuple, kind: str) -> tuple:
    if grid is None:
        return (min(20, spatial[0]),) if kind == "signal" else tuple(min(16, s) for s in spatial)
    cells = (grid,) * len(spatial) if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool) else grid
    if not isinstance(cells, (tuple, list)) or len(cells) != len(spatial) or any(
            isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not 1 <= g <= s for g, s in zip(cells, spatial)):
        raise ValueError(f"grid {grid!r} must give 1 to {spatial} cells (ints) along each of the maps' axes {spatial}")
    return tuple(int(g) for g in cells)


def spray(maps, n_clusters: int | None = None, *, grid=None, sign: str = "absolute", kind: str = "auto",
          n_neighbors: int = 10, max_clusters: int = 10, seed: int = 0) -> SprayResult:
    """Spectral clusters of maps (one class's inputs), with the eigengap's suggestion.

    Args:
        maps: as :func:`downsampled` takes them (with ``grid``, ``sign``, ``kind``); at least
            ``n_neighbors + 2``, not all alike.
        n_clusters: the number of clusters; None: the eigengap's.
        n_neighbors: the k of the nearest-neighbour graph (the paper's affinity).
        max_clusters: the most clusters the eigengap may suggest.
        seed: for the clustering's k-means step.
    """
    from scipy.sparse.csgraph import laplacian
    from sklearn.cluster import SpectralClustering
    from sklearn.neighbors import kneighbors_graph
    features, grid_shape = downsampled(maps, grid=grid, sign=sign, kind=kind)
    n = len(features)
    n_neighbors = int(check_number("n_neighbors", n_neighbors, 1, integer=True))
    max_clusters = int(check_number("max_clusters", max_clusters, 2, integer=True))
    if n < n_neighbors + 2:
        raise ValueError(f"SpRAy needs more maps than n_neighbors + 1 ({n_neighbors + 1}), got {n}")
    if np.ptp(features, axis=0).max() == 0:
        raise ConstantMaps("every map is the same (after downsampling): there is nothing to cluster")
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
        with warnings.catch_warnings():                  # groups with no edge between them: the clearest case, not a fault
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            labels = SpectralClustering(k, affinity="precomputed",
                                        random_state=seed, assign_labels="kmeans").fit_predict(graph).astype(np.int64)
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


def cluster_agreement(labels, truth, *, control_labels=None, n_boot: int = 1000, seed: int = 0) -> dict:
    """How well clusters isolate a known group (the marked inputs): the adjusted Rand index (ARI)
    between ``labels`` and ``truth``, with a 95 % bootstrap interval over the inputs; with
    ``control_labels`` (a control model's clusters of the same inputs) its ARI too and the
    difference, on the same drawn inputs. Each bootstrap draw scores the distinct inputs it drew
    (about 63 % of them): an input paired with its own copy would always agree and lift the index.

    Args:
        labels, control_labels: int (N,) cluster of each input; truth: (N,) the known group (bool or int).
    """
    from sklearn.metrics import adjusted_rand_score
    labels, truth = _categories("labels", labels), _categories("truth", truth)
    if labels.shape != truth.shape or len(labels) < 4:
        raise ValueError(f"labels and truth must be one value an input, the same length >= 4, got {labels.shape} and "
                         f"{truth.shape}")
    if len(np.unique(truth)) < 2:
        raise ValueError("truth holds one group only: the agreement with it is undefined")
    sides = {"model": labels}
    if control_labels is not None:
        control_labels = _categories("control_labels", control_labels)
        if control_labels.shape != labels.shape:
            raise ValueError(f"control_labels has shape {control_labels.shape}, labels {labels.shape}: cluster the "
                             "same inputs")
        sides["control"] = control_labels
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in sides}
    for _ in range(int(check_number("n_boot", n_boot, 1, integer=True))):
        pick = np.unique(rng.integers(0, len(truth), len(truth)))       # each drawn input once: a repeat would agree with itself
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


def _categories(name: str, values) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "biu":
        raise ValueError(f"{name} must be one bool or int category an input, (N,), got {values.dtype} {values.shape}")
    return values
