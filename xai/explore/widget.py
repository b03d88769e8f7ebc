"""The explorer's widget: controls that choose the examples (class, predicted class, right or
wrong, group, order), one example at a time drawn by :class:`~xai.explore.view.Renderer` into an
``ipywidgets.Image``, and a static snapshot of the same view for pages where widgets do not render.

Only core ipywidgets (Dropdown, ToggleButtons, Slider, Image, HTML), which Colab, JupyterLab,
Jupyter Notebook and Voila all render without extensions.

Axis key: N examples stored, K classes.
"""
from __future__ import annotations

import numpy as np

from xai.explore.select import OUTCOMES, Query, select, sort_keys
from xai.explore.store import MapSet
from xai.explore.view import NORMALISATIONS, SIGNS, Renderer, check_opacity, display_maps

__all__ = ["Explorer", "widgets_module"]

ANY_OPTION = -1           # the drop-downs' "any"

WIDGETS_MISSING = ("the explorer needs ipywidgets: `pip install ipywidgets` (Colab has it), then restart the kernel. "
                   "Where widgets cannot run, Explorer.snapshot(path) draws the same view to a PNG file")


def widgets_module():
    """``ipywidgets``, or an ImportError that says what to do."""
    try:
        import ipywidgets
    except ImportError:
        raise ImportError(WIDGETS_MISSING) from None
    return ipywidgets


class Explorer:
    """Browse stored explanations. ``.widget`` is what a notebook shows; the state (``query``,
    ``rows``, ``at``, the display options) and ``.drawn`` (what was drawn last: the example's row,
    position and the maps as displayed) let code and tests drive it without a browser."""

    def __init__(self, maps: MapSet, *, class_names=None):
        self.maps = maps
        k = maps.table.k
        self.class_names = [str(c) for c in class_names] if class_names is not None else [str(c) for c in range(k)]
        if len(self.class_names) != k:
            raise ValueError(f"class_names has {len(self.class_names)} names, the files' probabilities {k} classes")
        self.query = Query()
        self.normalisation, self.sign, self.opacity = NORMALISATIONS[0], SIGNS[0], 0.5
        self.renderer = Renderer(maps.names)
        self.rows = select(maps.table, self.query)
        self.at = 0
        self.drawn = None
        self._widgets = None
        self._syncing = False

    # --- state, without widgets ---

    def set_query(self, **changes) -> np.ndarray:
        """Change the selection (fields of :class:`Query`); returns the rows chosen and draws the first.
        A bad change raises and leaves the selection as it was."""
        unknown = set(changes) - set(Query.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown query fields {sorted(unknown)}; a query has {list(Query.__dataclass_fields__)}")
        query = Query(**{**self.query.__dict__, **changes})
        rows = select(self.maps.table, query)                               # checks the query before anything changes
        self.query, self.rows, self.at = query, rows, 0
        self.draw()
        return self.rows

    def set_display(self, *, normalisation=None, sign=None, opacity=None) -> None:
        """Change how the maps are drawn; a bad option raises and leaves the display as it was."""
        normalisation = self.normalisation if normalisation is None else normalisation
        sign = self.sign if sign is None else sign
        opacity = self.opacity if opacity is None else check_opacity(opacity)
        if normalisation not in NORMALISATIONS or sign not in SIGNS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS} and sign one of {SIGNS}, got "
                             f"{normalisation!r} and {sign!r}")
        self.normalisation, self.sign, self.opacity = normalisation, sign, opacity
        self.draw()

    def go(self, at: int) -> None:
        """Show the ``at``-th example of the selection."""
        if isinstance(at, bool) or not isinstance(at, (int, np.integer)) or not 0 <= at < max(len(self.rows), 1):
            raise IndexError(f"the selection has {len(self.rows)} examples: go to an int in 0..{max(len(self.rows) - 1, 0)}, "
                             f"got {at!r}")
        self.at = int(at)
        self.draw()

    def draw(self) -> bytes | None:
        """Draw the current example (None when the selection is empty); updates the widget if shown."""
        if not len(self.rows):
            self.drawn = None
            self._show(None, f"no example matches: {self._describe()}")
            return None
        row = int(self.rows[self.at])
        maps = self.maps.maps(row)
        spatial = len(self.maps.spatial_shape)
        png = self.renderer.render(self.maps.input(row), maps, normalisation=self.normalisation, sign=self.sign,
                                   opacity=self.opacity, title=self._title(row), spatial_ndim=spatial)
        self.drawn = {"row": row, "position": int(self.maps.table.position[row]), "png": png,
                      "maps": display_maps(maps, normalisation=self.normalisation, sign=self.sign, spatial_ndim=spatial)}
        self._show(png, f"{self.at + 1} of {len(self.rows)}: {self._describe()}")
        return png

    def snapshot(self, path: str, *, count: int = 3) -> str:
        """The first ``count`` examples of the current selection, drawn as this view draws them, one
        below the other, into the PNG ``path`` (written whole, then renamed): what a page that cannot
        run widgets (GitHub) shows."""
        from matplotlib.figure import Figure

        from xai.plots import save_figure
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        if not len(self.rows):
            raise ValueError(f"no example matches the selection ({self._describe()}): nothing to draw")
        here, pngs = self.at, []
        for at in range(min(count, len(self.rows))):
            self.go(at)
            pngs.append(self.drawn["png"])
        images = [_decode_png(p) for p in pngs]
        h, w = images[0].shape[:2]
        fig = Figure(figsize=(w / 80, h * len(images) / 80), dpi=80)
        for k, image in enumerate(images):
            ax = fig.add_axes((0, 1 - (k + 1) / len(images), 1, 1 / len(images)))
            ax.imshow(image), ax.axis("off")
        self.go(here)                                                       # back where the user was
        return save_figure(fig, path, dpi=80)

    def _title(self, row: int) -> str:
        t = self.maps.table
        name = lambda c: self.class_names[int(c)]                             # noqa: E731
        truth = "" if t.label is None else f"true {name(t.label[row])}, "
        groups = "".join(f", {k} {v[row]}" for k, v in t.groups.items())
        return (f"example {t.position[row]}: {truth}predicted {name(t.predicted[row])} ({t.confidence[row]:.2f}), "
                f"maps of {name(t.explained[row])}{groups}")

    def _describe(self) -> str:
        q = self.query
        parts = [f"class {self.class_names[q.true_class]}" if q.true_class is not None else "",
                 f"predicted {self.class_names[q.predicted]}" if q.predicted is not None else "",
                 q.outcome if q.outcome != "all" else "", f"{q.group[0]} {q.group[1]}" if q.group else "",
                 f"by {q.sort_by}{' (largest first)' if q.descending else ''}"]
        return ", ".join(p for p in parts if p)

    # --- the widget ---

    @property
    def widget(self):
        """The ipywidgets box (built on first use)."""
        if self._widgets is None:
            self._widgets = self._build()
            self.draw()
        return self._widgets["box"]

    def _show(self, png, status: str) -> None:
        if self._widgets is None:
            return
        self._widgets["image"].value = png if png is not None else _BLANK_PNG
        self._widgets["status"].value = status
        slider = self._widgets["at"]
        self._syncing = True                                                # moving the slider is not a new request
        try:
            slider.max = max(len(self.rows) - 1, 0)
            slider.value = self.at
            slider.disabled = len(self.rows) <= 1
        finally:
            self._syncing = False

    def _build(self) -> dict:
        w = widgets_module()
        t = self.maps.table
        classes = [("any", ANY_OPTION)] + [(n, c) for c, n in enumerate(self.class_names)]   # not None: a browser
        pairs = [(k, str(v)) for k, col in t.groups.items() for v in np.unique(col)]         # shows a None value blank
        groups = [(f"{k}: {v}", i) for i, (k, v) in enumerate(pairs)]
        c = {"true_class": w.Dropdown(options=classes, description="class", disabled=t.label is None),
             "predicted": w.Dropdown(options=classes, description="predicted"),
             "outcome": w.ToggleButtons(options=list(OUTCOMES), description="outcome", disabled=t.label is None),
             "group": w.Dropdown(options=[("any", ANY_OPTION)] + groups, description="group"),
             "sort_by": w.Dropdown(options=sort_keys(t), description="sort by"),
             "descending": w.Checkbox(value=True, description="largest first"),
             "normalisation": w.ToggleButtons(options=list(NORMALISATIONS), description="scale"),
             "sign": w.ToggleButtons(options=list(SIGNS), description="maps"),
             "opacity": w.FloatSlider(value=self.opacity, min=0.0, max=1.0, step=0.05, description="opacity"),
             "at": w.IntSlider(value=0, min=0, max=max(len(self.rows) - 1, 0), description="example")}
        chosen = {"true_class": lambda v: None if v == ANY_OPTION else v, "predicted": lambda v: None if v == ANY_OPTION else v,
                  "group": lambda v: None if v == ANY_OPTION else pairs[v]}
        for key in ("true_class", "predicted", "outcome", "group", "sort_by", "descending"):
            c[key].observe(lambda change, key=key: self.set_query(**{key: chosen.get(key, lambda v: v)(change["new"])}),
                           names="value")
        for key in ("normalisation", "sign", "opacity"):
            c[key].observe(lambda change, key=key: self.set_display(**{key: change["new"]}), names="value")
        c["at"].observe(lambda change: None if self._syncing else self.go(change["new"]), names="value")
        image, status = w.Image(format="png"), w.HTML()
        rows = [w.HBox([c["true_class"], c["predicted"], c["group"]]), w.HBox([c["outcome"]]),
                w.HBox([c["sort_by"], c["descending"], c["at"]]),
                w.HBox([c["normalisation"], c["sign"], c["opacity"]]), status, image]
        return dict(c, image=image, status=status, box=w.VBox(rows))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _blank_png() -> bytes:
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(buffer, format="PNG")
    return buffer.getvalue()


_BLANK_PNG = _blank_png()


def _decode_png(png: bytes) -> np.ndarray:
    import io

    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
