"""xai/explore/select.py: the filters keep exactly the matching rows and the order is the one asked for."""
import numpy as np
import pytest

from xai.explore.select import Query, select
from xai.explore.store import Table


@pytest.fixture
def table():
    return Table(position=np.arange(6), label=np.array([0, 0, 1, 1, 2, 2]), predicted=np.array([0, 1, 1, 1, 2, 0]),
                 explained=np.array([0, 1, 1, 1, 2, 0]), confidence=np.array([.9, .5, .8, .6, .7, .4], np.float32),
                 groups={"slide": np.array(["a", "b", "a", "b", "a", "b"])},
                 metrics={"drop": np.array([3, 1, 2, 6, 5, 4], np.float32)})


def test_filters_keep_the_matching_rows(table):
    assert select(table, Query(true_class=1)).tolist() == [2, 3]
    assert select(table, Query(predicted=0)).tolist() == [0, 5]
    assert sorted(select(table, Query(outcome="wrong")).tolist()) == [1, 5]
    assert sorted(select(table, Query(group=("slide", "a")))) == [0, 2, 4]
    assert select(table, Query(true_class=0, outcome="right")).tolist() == [0]


def test_sorting_by_confidence_position_or_a_metric(table):
    assert select(table, Query()).tolist() == [0, 2, 4, 3, 1, 5]
    assert select(table, Query(sort_by="position", descending=False)).tolist() == [0, 1, 2, 3, 4, 5]
    assert select(table, Query(sort_by="drop")).tolist() == [3, 4, 5, 0, 2, 1]


def test_unknown_choices_are_refused(table):
    with pytest.raises(ValueError, match="cannot sort by 'speed'"):
        select(table, Query(sort_by="speed"))
    with pytest.raises(ValueError, match="outcome must be one of"):
        select(table, Query(outcome="maybe"))
    with pytest.raises(ValueError, match="no group 'patient'"):
        select(table, Query(group=("patient", 1)))
    unlabelled = Table(table.position, None, table.predicted, table.explained, table.confidence)
    with pytest.raises(ValueError, match="pass labels="):
        select(unlabelled, Query(outcome="right"))
