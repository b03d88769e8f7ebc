"""Plots of explanations: 1D signals with shaded attributions, 2D tiles with heatmap overlays, and
grids of several methods for several examples; the figures of training (learning curves,
confusion, ROC); and :func:`save_figure`, which writes every figure under figures/ whole or not at all.

A map is either unsigned (Grad-CAM, RISE, SISE: sequential colormap from 0) or signed (Integrated
Gradients: diverging colormap centred at 0, never min-max squashed into [0, 1]).

Axis key: N examples, T signal length, H, W image size, C channels.
"""
from __future__ import annotations

import os
import textwrap

import numpy as np

from xai.files import atomic_path

__all__ = ["GRID_NOTE", "SIGNED", "UNSIGNED", "plot_signal", "plot_image", "plot_grid", "plot_panels", "plot_cascade",
           "cascade_steps", "plot_curves", "plot_sanity", "plot_claims", "pick_examples", "map_kind", "save_figure",
           "plot_history", "plot_confusion", "plot_roc"]

SIGNED, UNSIGNED, ABSOLUTE = "signed", "unsigned", "absolute"
_SEQUENTIAL_CMAP = "inferno"
_DIVERGING_CMAP = "RdBu_r"


def map_kind(maps) -> str:
    """``"signed"`` if any value is negative, else ``"unsigned"``."""
    return SIGNED if np.min(maps) < 0 else UNSIGNED


def _checked_map(values, kind, what: str):
    """A map as float32, finite (a NaN would draw no overlay without a word), and its kind checked."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiub":
        raise ValueError(f"{what} must be numeric, got dtype {values.dtype}")
    values = values.astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{what} holds NaN or inf ({int(np.sum(~np.isfinite(values)))} values): nothing would be drawn "
                         "for them; explain the example again or leave it out")
    if kind is not None and kind not in (SIGNED, UNSIGNED, ABSOLUTE):
        raise ValueError(f"kind must be None, {SIGNED!r}, {UNSIGNED!r} or {ABSOLUTE!r}, got {kind!r}")
    return values


def _limits(values, kind: str, percentile: float):
    """Colour limits: symmetric around 0 for signed maps, from 0 otherwise; clipped at a percentile."""
    mag = np.percentile(np.abs(values), percentile) if values.size else 0.0
    mag = float(mag) if mag > 0 else float(np.abs(values).max() or 1.0)
    return (-mag, mag) if kind == SIGNED else (0.0, mag)


def plot_signal(ax, signal, attribution=None, *, kind: str | None = None, mask=None, percentile: float = 100,
                colorbar: bool = False, title: str | None = None):
    """A 1D signal (T,) or (T, 1) as a line, with the attribution (T,) as background shading.

    Signed maps use a diverging colormap centred at zero; unsigned maps a sequential one from zero.
    ``mask`` (T,) bool draws the ground truth as a green band under the signal.
    """
    import matplotlib.pyplot as plt
    signal = np.asarray(signal, np.float32).reshape(-1)                 # (T,)
    positions = np.arange(len(signal))
    lo, hi = signal.min(), signal.max()
    pad = 0.1 * (hi - lo + 1e-6)
    image = None
    if attribution is not None:
        attribution = _checked_map(attribution, kind, "attribution")
        if attribution.shape not in ((len(signal),), (len(signal), 1)):
            raise ValueError(f"attribution has shape {attribution.shape}, expected ({len(signal)},) or "
                             f"({len(signal)}, 1) to match the signal")
        attribution = attribution.reshape(-1)                            # (T,)
        kind = kind or map_kind(attribution)
        if kind == ABSOLUTE:
            attribution = np.abs(attribution)
        vmin, vmax = _limits(attribution, kind, percentile)
        cmap = _DIVERGING_CMAP if kind == SIGNED else _SEQUENTIAL_CMAP
        image = ax.imshow(attribution[None, :], aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                          extent=(-0.5, len(signal) - 0.5, lo - pad, hi + pad), alpha=0.85,
                          interpolation="nearest")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.size != len(signal):
            raise ValueError(f"mask must be boolean with {len(signal)} positions, got {mask.dtype} {mask.shape}")
        mask = mask.reshape(-1)
        band = np.where(mask, lo - pad, np.nan)
        ax.plot(positions, band, color="limegreen", lw=5, solid_capstyle="butt", label="ground truth")
    ax.plot(positions, signal, color="white" if attribution is not None else "k", lw=2.4)
    ax.plot(positions, signal, color="black", lw=1.2)
    ax.set_xlim(-0.5, len(signal) - 0.5)
    ax.set_ylim(lo - 1.6 * pad, hi + pad)
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar and image is not None:
        plt.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    return image


def plot_image(ax, image, heatmap=None, *, kind: str | None = None, percentile: float = 99,
               alpha: float = 0.5, colorbar: bool = False, title: str | None = None,
               pixel_max: float | None = None):
    """An RGB tile (H, W, 3) with a heatmap overlay (H, W) or (H, W, C).

    The tile is drawn as it is: uint8 on 0-255; float on 0-255 if any value exceeds 1, else on
    0-1; ``pixel_max`` (255 or 1: the brightest value) overrides that guess for a float tile.
    Unsigned maps (Grad-CAM, RISE, SISE): sequential colormap from 0 over the tile. Signed maps
    (IG): channels summed, diverging colormap centred at 0, clipped at the ``percentile`` of |value|.
    ``kind="absolute"``: |attribution| (summed over channels for (H, W, C)), sequential, clipped
    likewise: a negative value shows as strongly as a positive one. A map holding NaN or inf is an
    error (it would draw nothing there).
    """
    import matplotlib.pyplot as plt
    raw = np.asarray(image)
    if raw.ndim != 3 or raw.shape[-1] not in (1, 3):
        raise ValueError(f"image must be (H, W, 3) or (H, W, 1), got {raw.shape}")
    if raw.dtype.kind not in "fiu" or not np.isfinite(raw).all():
        raise ValueError(f"image must be finite numbers, got {raw.dtype}")
    scale = 255.0 if raw.dtype == np.uint8 else float(pixel_max) if pixel_max else \
        (255.0 if raw.max() > 1.0 else 1.0)
    if raw.dtype != np.uint8 and (raw.min() < 0 or raw.max() > scale):
        raise ValueError(f"image values lie in [{raw.min():.3g}, {raw.max():.3g}], outside [0, {scale:g}]; "
                         "pass pixel_max, or scale the tile to 0-1 or 0-255")
    ax.imshow(raw.astype(np.float32) / scale, cmap="gray" if raw.shape[-1] == 1 else None, vmin=0, vmax=1)
    shown = None
    if heatmap is not None:
        heatmap = _checked_map(heatmap, kind, "heatmap")
        if heatmap.shape[:2] != raw.shape[:2] or heatmap.ndim not in (2, 3):
            raise ValueError(f"heatmap has shape {heatmap.shape}, expected {raw.shape[:2]} or {raw.shape} "
                             "to match the tile")
        kind = kind or map_kind(heatmap)
        if kind == ABSOLUTE:
            heatmap = np.abs(heatmap)                                    # |value|: negatives count, not vanish
        if heatmap.ndim == 3:
            heatmap = heatmap.sum(-1)                                    # (H, W)
        vmin, vmax = _limits(heatmap, SIGNED if kind == SIGNED else UNSIGNED, percentile)
        cmap = _DIVERGING_CMAP if kind == SIGNED else _SEQUENTIAL_CMAP
        shown = ax.imshow(np.clip(heatmap, vmin, vmax), cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar and shown is not None:
        plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    return shown


def _shown_scale(values, kind: str, percentile: float) -> np.ndarray:
    """A map on the grid's common scale: signed maps divided by their ``percentile`` of |value| (so -1
    to 1, clipped); unsigned maps stretched from their minimum to their ``percentile`` (0 to 1), so a
    near-flat map (RISE's) shows its structure instead of a wash of one colour."""
    values = np.asarray(values, np.float32)
    if kind == SIGNED:
        return np.clip(values / _limits(values, SIGNED, percentile)[1], -1.0, 1.0)
    values = np.abs(values) if kind == ABSOLUTE else values
    low = float(values.min())
    top = float(np.percentile(values, percentile)) - low
    return np.clip((values - low) / (top if top > 0 else 1.0), 0.0, 1.0)


GRID_NOTE = ("colours: each map on its own scale; signed maps (IG: channels summed) diverge from 0 (blue negative,\n"
             "red positive) up to their {top} of |value|; unsigned maps run from their minimum to their {top}")


def _scale_note(fig, percentile: float, ground_truth: bool) -> None:
    """Under the figure: how each map is scaled (:data:`GRID_NOTE`) and, where drawn, the ground truth."""
    top = "largest" if percentile == 100 else f"{percentile:g}th percentile"
    fig.supxlabel(GRID_NOTE.format(top=top) + ("; green band: the ground truth" if ground_truth else ""), fontsize=7)


def _draw_scaled(ax, x, values, kind: str, percentile: float, title, what: str, mask=None):
    """One example's map on its own scale (:func:`_shown_scale`) over its signal (T, 1) or tile."""
    values = _checked_map(values, kind, what)
    is_1d = np.ndim(x) == 2
    if not is_1d and values.ndim == 3:                       # (H, W, C): one value a pixel first
        values = np.abs(values).sum(-1) if kind == ABSOLUTE else values.sum(-1)
    scaled = _shown_scale(values, kind, percentile)
    shown_kind = SIGNED if kind == SIGNED else UNSIGNED
    if is_1d:
        return plot_signal(ax, x, scaled, kind=shown_kind, percentile=100, title=title, mask=mask)
    return plot_image(ax, x, scaled, kind=shown_kind, percentile=100, title=title)


def _one_input(x, mask, kinds, maps, percentile):
    """The checks plot_panels and plot_cascade share: one signal (T, 1) or tile (H, W, 3 or 1), a
    mask for a signal only, ``kinds`` naming drawn methods, ``percentile`` in (0, 100]."""
    x = np.asarray(x)
    if x.ndim not in (2, 3) or (x.ndim == 3 and (x.shape[-1] not in (1, 3) or x.shape[0] == 1)):
        raise ValueError(f"x must be one signal (T, 1) or one tile (H, W, 3), got shape {x.shape}"
                         + ("; for a batch of one, pass x[0]" if x.ndim == 3 and x.shape[0] == 1 else ""))
    if mask is not None:
        mask = np.asarray(mask)
        if x.ndim != 2 or mask.shape != (len(x),):
            raise ValueError(f"mask is the ground truth of a signal, ({len(x)},) for this one; got shape {mask.shape} "
                             f"for an input of shape {x.shape}")
    unknown = sorted(set(kinds or {}) - set(maps))
    if unknown:
        raise ValueError(f"kinds names methods that are not drawn: {unknown}; drawn: {list(maps)}")
    if percentile is not None and (isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.number))
                                   or not 0 < percentile <= 100):
        raise ValueError(f"percentile must be a number in (0, 100], got {percentile!r}")
    return x


def plot_panels(x, maps: dict, *, kinds: dict | None = None, ncols: int | None = None, mask=None, percentile: float | None = None,
                cell_size=(2.0, 1.9), title: str | None = None, input_title: str = "input"):
    """One example explained by many methods: the input, then one panel a method, ``ncols`` a row
    (default: 4 signals, 7 tiles), each map on its own scale (:data:`GRID_NOTE`, written under the figure).

    Args:
        x: one signal (T, 1) or tile (H, W, 3).
        maps: method name -> that example's map, (T,) / (H, W) / (H, W, C) (or shaped like ``x``).
        kinds: method name -> "signed", "unsigned" or "absolute"; default from each map's sign.
        mask: (T,) ground truth of a signal (a green band under it), or None.
    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    x = _one_input(x, mask, kinds, maps, percentile)
    ncols = (4 if x.ndim == 2 else 7) if ncols is None else ncols
    if not maps or isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"need at least one map and ncols >= 1, got {len(maps)} maps and ncols={ncols!r}")
    kinds, is_1d = kinds or {}, x.ndim == 2
    percentile = percentile or (100 if is_1d else 99)
    panels = len(maps) + (0 if is_1d else 1)
    nrows = -(-panels // ncols)
    width = cell_size[0] * (1.4 if is_1d else 1.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, cell_size[1] * nrows * (0.75 if is_1d else 1) + 0.9),
                             squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    if not is_1d:
        plot_image(flat.pop(0), x, title=input_title)
    for ax, (name, values) in zip(flat, maps.items()):
        _draw_scaled(ax, x, values, kinds.get(name) or map_kind(values), percentile, name, f"maps[{name!r}]", mask)
    for ax in flat[len(maps):]:
        ax.set_axis_off()
    _scale_note(fig, percentile, mask is not None)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def cascade_steps(steps, n_layers: int) -> list[int]:
    """The cascade's columns: ``steps`` checked as indices in [0, n_layers] (0: the original maps; l:
    randomised down to the l-th layer from the top), or by default the original, the top layer, the
    middle and every layer."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) or n_layers < 1:
        raise ValueError(f"n_layers must be an int >= 1, got {n_layers!r}")
    steps = sorted({0, 1, (n_layers + 1) // 2, n_layers}) if steps is None else list(steps)
    if not steps or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n_layers
                        for k in steps):
        raise ValueError(f"steps must be indices in [0, {n_layers}] (0: the original maps), got {steps}")
    return [int(k) for k in steps]


def plot_cascade(x, cascades: dict, *, steps=None, kinds: dict | None = None, mask=None, percentile: float | None = None,
                 cell_size=(2.0, 1.9), title: str | None = None):
    """The sanity cascade's maps of one example: a method a row, its original map and then its map
    after randomising the model down to each chosen layer (top first), each on its own scale.

    Args:
        x: the example, (T, 1) or (H, W, 3).
        cascades: method name -> ``xai.metrics.sanity.cascading_randomization(..., return_maps=True)``
            of this one example: ``layers`` (L,) and ``maps`` (L + 1, 1, ...).
        steps: the columns, as indices into ``maps`` (0: the original; l: randomised down to
            ``layers[l - 1]``); default: the original, the top layer, the middle and every layer.
        mask: (T,) ground truth of a signal, or None.
    """
    import matplotlib.pyplot as plt
    if not cascades:
        raise ValueError("cascades is empty: give at least one method's cascade")
    x, kinds = _one_input(x, mask, kinds, cascades, percentile), kinds or {}
    layers = None
    for name, r in cascades.items():
        if not isinstance(r, dict) or "layers" not in r or "maps" not in r \
                or np.shape(r["maps"])[:2] != (len(r["layers"]) + 1, 1):
            got = f"{np.shape(r.get('maps'))} for {len(r.get('layers', []))} layers" if isinstance(r, dict) else repr(r)[:80]
            raise ValueError(f"cascades[{name!r}] must come from cascading_randomization(..., return_maps=True) on one "
                             f"example: layers (L,) and maps (L + 1, 1, ...), got {got}")
        if layers is not None and list(r["layers"]) != layers:
            raise ValueError("every cascade must randomise the same layers (the same model)")
        layers = list(r["layers"])
    steps = cascade_steps(steps, len(layers))
    is_1d = x.ndim == 2
    percentile = percentile or (100 if is_1d else 99)
    width = cell_size[0] * (1.4 if is_1d else 1.0)
    fig, axes = plt.subplots(len(cascades), len(steps), squeeze=False, layout="constrained",
                             figsize=(width * len(steps), cell_size[1] * len(cascades) * (0.75 if is_1d else 1) + 0.9))
    heads = ["original" if k == 0 else f"random down to\n{layers[k - 1]}" for k in steps]
    for i, (name, r) in enumerate(cascades.items()):
        maps = np.asarray(r["maps"])[:, 0]
        kind = kinds.get(name) or map_kind(maps)
        for j, k in enumerate(steps):
            head = (f"{name} | {heads[j]}" if is_1d else heads[j] if i == 0 else None)
            _draw_scaled(axes[i, j], x, maps[k], kind, percentile, head, f"cascades[{name!r}] step {k}", mask)
        axes[i, 0].set_ylabel(name, fontsize=9)
    _scale_note(fig, percentile, mask is not None)
    fig.suptitle(title or "the sanity cascade: maps as the model is randomised from the top layer down", fontsize=11)
    return fig


def plot_grid(inputs, maps: dict, *, kinds: dict | None = None, masks=None, row_titles=None,
              percentile: float | None = None, cell_size=(2.6, 2.2), title: str | None = None):
    """Several methods side by side for several examples, in one figure, each map on its own scale
    (:data:`GRID_NOTE`, written under the figure) with a colour bar a method.

    Args:
        inputs: (N, T, 1) signals or (N, H, W, 3) tiles.
        maps: method name -> (N, T) / (N, H, W) / (N, H, W, C) maps.
        kinds: method name -> "signed", "unsigned" or "absolute"; default from each map's sign.
        masks: (N, T) ground truth for 1D inputs (a green band under the signal), or None.
        row_titles: one string per example (shown over the input column).
        title: the figure's title, with room kept for it above the column headers.
    Returns:
        the matplotlib Figure; rows are examples, the first column the input (images).
    """
    import matplotlib.pyplot as plt
    inputs = np.asarray(inputs)
    n, is_1d = len(inputs), inputs.ndim == 3
    for name, m in maps.items():
        if len(m) != n:
            raise ValueError(f"maps[{name!r}] holds {len(m)} maps for {n} inputs")
    if row_titles is not None and len(row_titles) != n:
        raise ValueError(f"row_titles holds {len(row_titles)} titles for {n} inputs")
    names, kinds = list(maps), kinds or {}
    percentile = percentile or (100 if is_1d else 99)
    ncols = len(names) + (0 if is_1d else 1)
    width = cell_size[0] * (1.6 if is_1d else 1.0)
    height = cell_size[1] * n * (0.7 if is_1d else 1) + 1.2
    fig, axes = plt.subplots(n, ncols, figsize=(width * ncols, height), squeeze=False, layout="constrained")
    shown = {}
    for i in range(n):
        row = row_titles[i] if row_titles is not None else None
        if not is_1d:
            plot_image(axes[i, 0], inputs[i], title="input" + (f"\n{row}" if row else "") if i == 0 else row)
        for j, name in enumerate(names):
            ax = axes[i, j + (0 if is_1d else 1)]
            kind = kinds.get(name) or map_kind(maps[name])
            head = (f"{row} | {name}" if (row and j == 0) else name) if is_1d else (name if i == 0 else None)
            shown[name] = _draw_scaled(ax, inputs[i], maps[name][i], kind, percentile, head, f"maps[{name!r}][{i}]",
                                       None if masks is None else masks[i])
    _scale_note(fig, percentile, masks is not None)
    if title:
        fig.suptitle(title, fontsize=11)
    for j, name in enumerate(names):
        if shown.get(name) is not None:
            bar = fig.colorbar(shown[name], ax=axes[:, j + (0 if is_1d else 1)], location="bottom",
                               fraction=0.04, pad=0.01, aspect=20, shrink=0.9)
            bar.set_ticks([-1, 0, 1] if (kinds.get(name) or map_kind(maps[name])) == SIGNED else [0, 1])
            bar.ax.tick_params(labelsize=6)
    return fig


def plot_curves(results: dict, title: str = ""):
    """Mean removal curves of every method (``xai.analysis.compare.compare_methods`` output): MoRF (most
    relevant removed first; lower area is better) and LeRF (least relevant first; higher is better),
    or deletion and insertion curves where those are what the results hold; each mean with its 95 %
    confidence band."""
    import matplotlib.pyplot as plt
    first = next(iter(results.values()))
    kinds = ("morf", "lerf") if "morf_curve" in first else ("deletion", "insertion")
    labels = {"morf": ("MoRF: most relevant removed first", "lower"),
              "lerf": ("LeRF: least relevant removed first", "higher"),
              "deletion": ("deletion", "lower"), "insertion": ("insertion", "higher")}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, layout="constrained")
    for ax, kind in zip(axes, kinds):
        for name, r in results.items():
            curve = np.asarray(r[f"{kind}_curve"], np.float64)              # (N, S+1)
            frac = np.linspace(0, 1, curve.shape[1])
            mean = curve.mean(0)
            half = 1.96 * curve.std(0, ddof=1) / np.sqrt(len(curve)) if len(curve) > 1 else np.zeros_like(mean)
            line, = ax.plot(frac, mean, label=f"{name} (AUC {np.mean(r[f'{kind}_auc']):.3f})")
            ax.fill_between(frac, mean - half, mean + half, color=line.get_color(), alpha=0.18, lw=0)
        ax.set_xlabel("fraction of positions " + ("inserted" if kind == "insertion" else "removed"))
        ax.set_title(f"{labels[kind][0]} ({labels[kind][1]} AUC is better)", fontsize=10)
        ax.grid(alpha=0.3), ax.legend(fontsize=8)
    axes[0].set_ylabel("probability of the explained class")
    fig.suptitle(title)
    sizes = sorted({len(r[f"{kinds[0]}_curve"]) for r in results.values()})
    fig.supxlabel(f"lines: the mean over the examples ({', '.join(map(str, sizes))}); bands: its pointwise 95 % "
                  "confidence interval at each step (normal approximation, examples independent)", fontsize=7.5)
    return fig


def plot_sanity(sanity: dict, title: str = ""):
    """Spearman correlation with the original maps as layers are randomised from the top down."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, r in sanity.items():
        corr = np.asarray(r["correlation"])                                 # (L, N)
        steps = np.arange(len(r["layers"]))
        ax.errorbar(steps, corr.mean(1), yerr=corr.std(1) / np.sqrt(corr.shape[1]), marker="o",
                    capsize=2, label=name)
    ax.set_xticks(np.arange(len(r["layers"])), r["layers"], rotation=45, ha="right", fontsize=8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("randomised down to (cascading, top layer first)")
    ax.set_ylabel("Spearman with original |map|")
    ax.set_ylim(-0.2, 1.05), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    ax.set_title(title or "sanity check: a faithful method decorrelates as the weights are randomised")
    fig.tight_layout()
    return fig


def _short(title: str) -> str:
    """A column title of ``xai.analysis.compare.COLUMNS`` for a narrow column: its name and direction on two lines."""
    title = title.replace("sanity: Spearman, all layers random", "sanity").replace(" (ROAD)", "").replace(" %", "")
    title = title.replace("increase in confidence", "increase")
    return title.replace(" AUC", "\nAUC").replace("average ", "average\n").replace("relevance ", "relevance\n")


def plot_claims(panels: dict, title: str = ""):
    """The comparison on one page: for each group (``{label: xai.analysis.compare.claims_matrix(...)}``),
    one panel below the other, methods x metrics, each cell the method's mean, coloured by how many
    methods beat it (darkest: none; methods the data cannot tell apart share a colour), the methods
    none beats marked with the weakest of their wins across the settings grid (the orderings' marks;
    see ``xai.analysis.compare.CLAIMS_LEGEND``); metrics with an asterisk were not swept."""
    import matplotlib.pyplot as plt
    from matplotlib import colors

    from xai.analysis.compare import CLAIMS_LEGEND
    if not panels:
        raise ValueError("panels must hold at least one group")
    cols = max(len(p["metrics"]) for p in panels.values())
    heights = [len(p["methods"]) + 1.2 for p in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(1.2 * cols + 1.8, 0.42 * sum(heights) + 1.0),
                             gridspec_kw={"height_ratios": heights}, squeeze=False, layout="constrained")
    cmap = colors.LinearSegmentedColormap.from_list("tiers", ["#1b7837", "#d9f0d3"])
    for ax, (label, p) in zip(axes[:, 0], panels.items()):
        tiers = np.asarray(p["tiers"], float)
        n = len(p["methods"])
        shown = np.where(np.isnan(tiers), np.nan, tiers / max(n - 1, 1))          # 0: none beats it
        ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for i in range(n):
            for j in range(len(p["metrics"])):
                v = p["values"][i][j]
                text = "–" if np.isnan(v) else f"{v:.{p['decimals'][j]}f} {p['marks'][i][j]}".rstrip()
                ax.text(j, i, text, ha="center", va="center", fontsize=9,
                        color="grey" if np.isnan(v) else "white" if shown[i, j] < 0.4 else "black")
        ax.set_xticks(range(len(p["metrics"])),
                      [_short(m) + ("" if sw else " *") for m, sw in zip(p["metrics"], p["swept"])], fontsize=8.5)
        ax.xaxis.tick_top()
        ax.set_yticks(range(n), p["methods"], fontsize=9.5)
        ax.tick_params(length=0)
        ax.set_title(label, fontsize=10.5, fontweight="bold", loc="left")
        for spine in ax.spines.values():
            spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.supxlabel("\n".join(textwrap.wrap(CLAIMS_LEGEND, 16 * cols + 20)), fontsize=7.5)
    return fig


def pick_examples(y_true, y_pred, num_classes: int) -> tuple[list, list]:
    """For each class, the first correctly classified and the first misclassified example (if any):
    two lists of indices into y."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct, wrong = [], []
    for c in range(num_classes):
        hit = np.flatnonzero((y_true == c) & (y_pred == c))
        miss = np.flatnonzero((y_true == c) & (y_pred != c))
        correct += hit[:1].tolist()
        wrong += miss[:1].tolist()
    return correct, wrong


# --- figures of training and evaluation, and writing a figure ---

def save_figure(fig, path: str, dpi: int = 120) -> str:
    """Write a matplotlib figure to ``path`` through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(path)[1]
    with atomic_path(path, suffix=ext or ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None} if ext == ".png" else None)
    return path


def plot_history(history: dict, title: str = ""):
    """Loss and accuracy per epoch, train and validation, with the chosen epoch marked. With a
    weight average (``raw_val_accuracy`` in the history) validation is the average's, and the raw
    weights' validation accuracy is drawn beside it."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    averaged = "raw_val_accuracy" in history
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[key], label="train (augmented)")
        ax.plot(epochs, history[f"val_{key}"], label="validation, averaged weights" if averaged else "validation")
        if averaged and key == "accuracy":
            ax.plot(epochs, history["raw_val_accuracy"], lw=0.8, alpha=0.6, label="validation, raw weights")
        ax.axvline(history["best_epoch"], color="grey", ls=":", label=f"chosen epoch {history['best_epoch']}")
        ax.set_xlabel("epoch"), ax.set_ylabel(key), ax.grid(alpha=0.3)
    axes[1].legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(y_true, y_pred, class_names: list[str], title: str = ""):
    """Confusion matrix (counts) and per-class accuracy, side by side. Returns (fig, per-class acc)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix
    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(k))            # (K, K)
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    ax0.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax0.text(j, i, cm[i, j], ha="center", va="center", fontsize=8,
                     color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax0.set_xticks(range(k), class_names, rotation=45, ha="right"), ax0.set_yticks(range(k), class_names)
    ax0.set_xlabel("predicted"), ax0.set_ylabel("true"), ax0.set_title("confusion matrix")
    ax1.bar(range(k), per_class, color="tab:blue")
    for i, a in enumerate(per_class):
        ax1.text(i, a + 0.005, f"{a:.3f}", ha="center", fontsize=7)
    ax1.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax1.set_ylim(max(0.0, per_class.min() - 0.1), 1.02), ax1.set_title("per-class accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig, per_class


def plot_roc(y_true, prob, class_names, title: str = "one-vs-rest ROC per class"):
    """One-vs-rest ROC curve of each class, its AUC in the legend. Returns the figure."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import auc, roc_curve
    prob = np.asarray(prob)
    if prob.ndim != 2 or prob.shape != (len(y_true), len(class_names)):
        raise ValueError(f"prob must be (N, K) = ({len(y_true)}, {len(class_names)}), got {prob.shape}")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for c, name in enumerate(class_names):
        fpr, tpr, _ = roc_curve(np.asarray(y_true) == c, prob[:, c])
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate"), ax.set_ylabel("true positive rate")
    ax.set_title(title), ax.legend(fontsize=8, loc="lower right")
    return fig
