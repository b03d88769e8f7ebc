"""Which stored examples the explorer shows, in which order: a :class:`Query` over a
:class:`~xai.explore.store.Table`, answered with NumPy on the in-memory columns only.

Axis key: N examples stored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xai.explore.store import Table

__all__ = ["ANY", "OUTCOMES", "SORT_BUILT_IN", "Query", "select", "sort_keys"]

ANY = None
OUTCOMES = ("all", "right", "wrong")
SORT_BUILT_IN = ("confidence", "position")


@dataclass(frozen=True)
class Query:
    """``true_class``, ``predicted``: a class or None (any); ``outcome``: "all", "right" or "wrong"
    (needs labels); ``group``: (name, value) or None; ``sort_by``: "confidence", "position" or a
    metric's name; ``descending``: largest first."""
    true_class: int | None = ANY
    predicted: int | None = ANY
    outcome: str = "all"
    group: tuple | None = None
    sort_by: str = "confidence"
    descending: bool = True


def sort_keys(table: Table) -> list[str]:
    """The names a query can sort by: the built-in ones, then the metrics."""
    return list(SORT_BUILT_IN) + list(table.metrics)


def select(table: Table, query: Query) -> np.ndarray:
    """The rows (int64) of ``table`` that match ``query``, sorted; ties keep the data's order."""
    keep = np.ones(table.n, bool)
    for name in ("true_class", "predicted"):
        value = getattr(query, name)
        if value is not ANY and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                 or not 0 <= value < table.k):
            raise ValueError(f"{name} must be None (any) or an int class in 0..{table.k - 1}, got {value!r}")
    if not isinstance(query.descending, (bool, np.bool_)):
        raise ValueError(f"descending must be True or False, got {query.descending!r}")
    if query.true_class is not ANY:
        if table.label is None:
            raise ValueError("the files hold no labels: pass labels= to filter by the true class")
        keep &= table.label == int(query.true_class)
    if query.predicted is not ANY:
        keep &= table.predicted == int(query.predicted)
    if query.outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {query.outcome!r}")
    if query.outcome != "all":
        if table.correct is None:
            raise ValueError("the files hold no labels: pass labels= to tell right from wrong")
        keep &= table.correct if query.outcome == "right" else ~table.correct
    if query.group is not None:
        if not isinstance(query.group, tuple) or len(query.group) != 2:
            raise ValueError(f"group must be a pair (name, value) or None, got {query.group!r}")
        name, value = query.group
        if name not in table.groups:
            raise ValueError(f"no group {name!r}; the groups are {sorted(table.groups)}")
        values = np.unique(table.groups[name])
        if str(value) not in values:
            raise ValueError(f"no {name} {value!r}; the values are {values.tolist()[:20]}")
        keep &= table.groups[name] == str(value)
    rows = np.flatnonzero(keep)
    key = _sort_column(table, query.sort_by)[rows]
    order = np.argsort(-key if query.descending else key, kind="stable")
    return rows[order].astype(np.int64)


def _sort_column(table: Table, name: str) -> np.ndarray:
    if name == "confidence":
        return table.confidence.astype(np.float64)
    if name == "position":
        return table.position.astype(np.float64)
    if name in table.metrics:
        return table.metrics[name].astype(np.float64)
    raise ValueError(f"cannot sort by {name!r}; choose one of {sort_keys(table)}")
