"""Browse stored explanations in a notebook: :func:`explore` opens the HDF5 files that
:func:`xai.dataset.explain_dataset` wrote (one a method) as an ipywidgets explorer; SpRAy clusters
one class's maps to find groups of inputs where the model looks at the same thing.

    store.py    MapSet: the files, read lazily and checked; Table: the per-example columns
    select.py   Query and select: which examples, in which order
    view.py     the maps on one colour scale (per map or shared; signed or absolute), drawn to PNG
    widget.py   Explorer: the controls, the image, a static snapshot for GitHub
    spray.py    SpRAy (Lapuschkin et al. 2019): spectral clusters of maps; agreement with a marker
"""
from __future__ import annotations

from xai.explore.select import Query, select
from xai.explore.spray import cluster_agreement, spray
from xai.explore.store import MapSet, Table
from xai.explore.widget import Explorer

__all__ = ["explore", "Explorer", "MapSet", "Table", "Query", "select", "spray", "cluster_agreement"]


def explore(paths, data=None, *, labels=None, groups=None, metrics=None, class_names=None) -> Explorer:
    """An explorer over the maps that ``explain_dataset`` stored.

    Args:
        paths: one file, a list of files (one a method) or a dict name -> file, over the same examples.
        data: the inputs the files were made from, (D, T, C) signals or (D, H, W, C) images, in the
            same order (None: the maps alone). Read one example at a time.
        labels: int (D,) true classes where the files hold none; groups: name -> (D,) values to filter
            by (HMT: ``{"slide": ..., "source image": ...}``); metrics: name -> float (D,) to sort by.
        class_names: the classes' names (default 0, 1, ...).

    Returns:
        an :class:`Explorer`; show ``explorer.widget`` (or the explorer itself) in a notebook cell.
        Without ipywidgets, ``.widget`` raises an ImportError saying what to install, and
        ``explorer.snapshot(path)`` still draws the view to a PNG file.
    """
    return Explorer(MapSet(paths, data, labels=labels, groups=groups, metrics=metrics), class_names=class_names)
