"""Explaining a whole data set: any method of :data:`xai.methods.METHODS` over arrays, memory maps,
``tf.data`` or image folders, into one HDF5 file, resumable after any kill.

- ``explain.py``  :func:`explain_dataset`, the one entry point, and its checks at the door
- ``sources.py``  where the examples come from (arrays, ``.npy`` memory maps, ``tf.data``, image folders)
- ``runner.py``   the batches: devices, reading ahead, writing behind
- ``store.py``    the file's layout, written part by part; :func:`load_explanations`, :func:`merge_shards`
- ``__main__.py`` the command line: ``python -m xai.dataset --help``
"""
from __future__ import annotations

from xai.dataset.explain import explain_dataset, model_fingerprint
from xai.dataset.store import load_explanations, merge_shards, shard_path

__all__ = ["explain_dataset", "load_explanations", "merge_shards", "model_fingerprint", "shard_path"]
