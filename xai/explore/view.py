"""Drawing one example for the explorer: the input, then each method's map over it, on one colour
scale, as PNG bytes (what an ``ipywidgets.Image`` shows, in Jupyter, Colab and Voila alike).

Conventions. Maps are shown signed (summed over channels; diverging colours, zero white) or
absolute (|value| summed over channels; sequential colours from zero). Normalisation "per map"
divides each map by its own 99th percentile of |value|, so each method's pattern is visible;
"shared" divides every map by the largest of those, so the maps compare in size (meaningful only
for methods in the same units, e.g. the gradient family). Both then share the colour bar [-1, 1]
(signed) or [0, 1] (absolute). Signals are drawn as lines over the shaded attribution, as
:func:`xai.plots.plot_signal` does.

Axis key: T signal length, H, W image size, C channels.
"""
from __future__ import annotations

import io

import numpy as np

__all__ = ["NORMALISATIONS", "SIGNS", "display_maps", "check_opacity", "Renderer"]

NORMALISATIONS = ("per map", "shared")
SIGNS = ("signed", "absolute")
PERCENTILE = 99.0
_CMAPS = {"signed": "RdBu_r", "absolute": "inferno"}


def display_maps(maps: dict, *, normalisation: str = "per map", sign: str = "signed",
                 spatial_ndim: int | None = None) -> dict[str, np.ndarray]:
    """The maps as drawn: (T,) or (H, W) each, on [-1, 1] (signed) or [0, 1] (absolute).

    Args:
        maps: name -> map, (T,), (T, C), (H, W) or (H, W, C).
        spatial_ndim: 1 for signals, 2 for images: a map with one axis more has channels, summed.
            None: guessed ((T, 1) and (H, W, C) have channels; a (T, C) map of several channels
            needs it said).
    """
    if not isinstance(maps, dict) or not maps:
        raise TypeError(f"maps must be a non-empty dict name -> map, got {type(maps).__name__}")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    if spatial_ndim not in (None, 1, 2):
        raise ValueError(f"spatial_ndim must be 1 (signals), 2 (images) or None, got {spatial_ndim!r}")
    flat = {}
    for name, m in maps.items():
        m = np.asarray(m, np.float32)
        if not np.isfinite(m).all():
            raise ValueError(f"{name}'s map holds NaN or inf; the file has a bad row: explain that example again")
        if sign == "absolute":
            m = np.abs(m)
        spatial = spatial_ndim or (1 if m.ndim == 1 or (m.ndim == 2 and m.shape[-1] == 1) else 2)
        if m.ndim == spatial + 1:
            m = m.sum(-1)                                                   # channels summed: (T,) or (H, W)
        if m.ndim != spatial:
            raise ValueError(f"{name}'s map is {m.shape}: expected {'(T,) or (T, C)' if spatial == 1 else '(H, W) or (H, W, C)'}")
        flat[name] = m
    scales = {n: float(np.percentile(np.abs(m), PERCENTILE)) or float(np.abs(m).max()) or 1.0 for n, m in flat.items()}
    if normalisation == "shared":
        top = max(scales.values())
        scales = {n: top for n in scales}
    lo = -1.0 if sign == "signed" else 0.0
    return {n: np.clip(m / scales[n], lo, 1.0) for n, m in flat.items()}


def check_opacity(opacity) -> float:
    if isinstance(opacity, bool) or not isinstance(opacity, (int, float, np.floating)) or not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be a number in [0, 1], got {opacity!r}")
    return float(opacity)


class Renderer:
    """Draws an input and its maps into one reused figure (the artists are updated, not redrawn
    from nothing, so a change of selection costs one PNG encode)."""

    def __init__(self, names: list[str], *, panel_inches: float = 2.2, dpi: int = 80):
        from matplotlib.figure import Figure
        self.names = list(names)
        self.fig = Figure(figsize=(panel_inches * (len(self.names) + 1) + 0.6, panel_inches + 0.5), dpi=dpi)
        self.axes = None
        self._artists = None
        self._layout = None

    def render(self, x, maps: dict, *, normalisation="per map", sign="signed", opacity: float = 0.5,
               title: str = "", spatial_ndim: int | None = None) -> bytes:
        """PNG bytes of the input ``x`` ((T, C) or (H, W, C), or None) beside each method's map
        (``spatial_ndim`` as :func:`display_maps` takes it)."""
        check_opacity(opacity)
        missing = [n for n in self.names if n not in maps]
        if missing:
            raise ValueError(f"no map for {missing}; this renderer draws {self.names}")
        shown = display_maps({n: maps[n] for n in self.names}, normalisation=normalisation, sign=sign,
                             spatial_ndim=spatial_ndim)
        layout = (sign, None if x is None else np.shape(x))
        if layout != self._layout:
            self._build(x, shown, sign)
            self._layout = layout
        self._update(x, shown, float(opacity))
        self.fig.suptitle(title, fontsize=9, y=0.98)
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png")
        return buffer.getvalue()

    # --- the artists ---

    def _build(self, x, shown, sign):
        self.fig.clear()                                                    # a new layout: panels and colour bar anew
        self.axes = self.fig.subplots(1, len(self.names) + 1)
        self.fig.subplots_adjust(left=0.02, right=0.9, bottom=0.04, top=0.8, wspace=0.08)   # room for the title
        for ax in self.axes:
            ax.set_xticks([]), ax.set_yticks([])
        lo = -1.0 if sign == "signed" else 0.0
        first = next(iter(shown.values()))
        self._artists = {"input": None, "maps": {}, "lines": {}}
        signal = first.ndim == 1
        if x is not None and not signal:
            self._artists["input"] = self.axes[0].imshow(_as_image(x))
        self.axes[0].set_title("input", fontsize=9)
        for ax, name in zip(self.axes[1:], self.names):
            if signal:
                img = ax.imshow(shown[name][None, :], aspect="auto", cmap=_CMAPS[sign], vmin=lo, vmax=1.0,
                                interpolation="nearest")
                self._artists["lines"][name] = ax.plot([], [], color="black", lw=1.2)[0]
            else:
                if x is not None:
                    ax.imshow(_as_image(x))
                img = ax.imshow(shown[name], cmap=_CMAPS[sign], vmin=lo, vmax=1.0)
            self._artists["maps"][name] = img
            ax.set_title(name, fontsize=9)
        if signal and x is not None:
            self._artists["input"] = self.axes[0].plot([], [], color="black", lw=1.2)[0]
        self.fig.colorbar(self._artists["maps"][self.names[-1]], ax=list(self.axes), fraction=0.02, pad=0.01)

    def _update(self, x, shown, opacity):
        signal = next(iter(shown.values())).ndim == 1
        if signal:
            self._update_signal(x, shown, opacity)
            return
        if x is not None:
            image = _as_image(x)
            self._artists["input"].set_data(image)
            for ax in self.axes[1:]:
                ax.images[0].set_data(image)
        for name, img in self._artists["maps"].items():
            img.set_data(shown[name])
            img.set_alpha(opacity if x is not None else 1.0)

    def _update_signal(self, x, shown, opacity):
        t = len(next(iter(shown.values())))
        values = None if x is None else np.asarray(x, np.float32).reshape(t, -1)[:, 0]   # (T,) first channel
        lo, hi = (-1.0, 1.0) if values is None else (float(values.min()), float(values.max()))
        pad = 0.1 * (hi - lo + 1e-6)
        extent = (-0.5, t - 0.5, lo - pad, hi + pad)
        for ax, name in zip(self.axes[1:], self.names):
            img = self._artists["maps"][name]
            img.set_data(shown[name][None, :])
            img.set_extent(extent)
            img.set_alpha(max(opacity, 0.05))
            if values is not None:
                self._artists["lines"][name].set_data(np.arange(t), values)
            ax.set_xlim(-0.5, t - 0.5), ax.set_ylim(lo - pad, hi + pad)
        if values is not None:
            self._artists["input"].set_data(np.arange(t), values)
            self.axes[0].set_xlim(-0.5, t - 0.5), self.axes[0].set_ylim(lo - pad, hi + pad)


def _as_image(x) -> np.ndarray:
    """An input tile as RGB on 0-1: integers are 0-255; floats within 0-1 as they are, within 0-255
    divided by 255, otherwise stretched from their minimum to their maximum; one channel as grey."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"an image input must be (H, W, C) with C 1, 3 or 4, got {x.shape}")
    if x.dtype.kind in "iub":
        x = x.astype(np.float32) / 255.0
    else:
        x = x.astype(np.float32)
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 255:
            x = (x - lo) / (hi - lo or 1.0)
        elif hi > 1:
            x = x / 255.0
    x = np.clip(x, 0, 1)
    return np.repeat(x, 3, -1) if x.shape[-1] == 1 else x[..., :3]
