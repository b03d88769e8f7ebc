"""Metrics of explanations, split by job:

- ``removal.py``      faithfulness: ROAD's imputation, MoRF / LeRF / SRG, deletion / insertion, average drop
- ``localisation.py`` against a ground-truth mask (relevance mass, pointing game) and the frame's share
- ``sanity.py``       the model-randomisation tests: the cascade, eMPRT and sMPRT (Hedström et al. 2024)
- ``agreement.py``    rank agreement between maps
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Metric", "METRICS"]


class Metric(NamedTuple):
    title: str               # a table's column title, with its direction
    name: str                # the metric in a sentence
    scale: int               # shown as value x scale (percentages: 100)
    higher_is_better: bool
    swept: bool              # scored under every removal setting of the settings sweep


# Every per-example metric the tables report, by its key in the results: the one table of metric
# metadata (the comparison's columns, the sweep's metrics and their names derive from it).
METRICS: dict[str, Metric] = {
    "morf_auc": Metric("MoRF AUC (ROAD) ↓", "MoRF AUC", 1, False, True),
    "lerf_auc": Metric("LeRF AUC (ROAD) ↑", "LeRF AUC", 1, True, True),
    "srg": Metric("SRG (ROAD) ↑", "SRG", 1, True, True),
    "drop": Metric("average drop % ↓", "average drop", 100, False, False),
    "increase": Metric("increase in confidence % ↑", "increase in confidence", 100, True, False),
    "relevance_mass": Metric("relevance mass ↑", "relevance mass", 1, True, False),
    "pointing": Metric("pointing game ↑", "pointing game", 1, True, False),
    "sanity": Metric("sanity: Spearman, all layers random ↓", "sanity correlation", 1, False, False),
}
