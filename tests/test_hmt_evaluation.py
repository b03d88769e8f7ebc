"""xai.training.report: what HMT.ipynb reports, checked on tiny stand-ins and on records written here."""
import json

import keras
import numpy as np
import pytest

import xai.training.report as he
import hmt_utils as hmt


def _constant_model(k: int = 8, favourite: int = 2):
    inp = keras.Input((150, 150, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inp)                    # (N, 3)
    logits = keras.layers.Dense(k, kernel_initializer="zeros",
                                bias_initializer=keras.initializers.Constant(np.eye(k)[favourite] * 5))(pooled)
    return keras.Model(inp, keras.layers.Softmax()(logits))


def test_test_accuracy_counts_and_tta():
    x = np.zeros((8, 150, 150, 3), np.uint8)
    y = np.array([2, 2, 2, 0, 1, 3, 4, 5])
    result = he.test_accuracy(_constant_model(), x, y, batch_size=3)
    assert result["n_correct"] == 3 and result["n"] == 8 and result["accuracy"] == 3 / 8
    assert result["tta_accuracy"] == 3 / 8 and result["prob"].shape == (8, 8)
    with pytest.raises(ValueError, match="as long"):
        he.test_accuracy(_constant_model(), x, y[:3])


def test_border_table_medians_and_verdicts():
    cams = np.zeros((4, 150, 150), np.float32)
    cams[0, :12] = 1                                   # all mass in the band
    cams[1, 60:90, 60:90] = 1                          # none in the band
    cams[2, 60:90, 60:90] = 1
    y = np.array([0, 1, 1, 2])                         # class 2: one all-zero map, skipped
    table, medians = he.border_table(cams, y, ["a", "b", "c"], band=12)
    assert medians["a"] == pytest.approx(1.0) and medians["b"] == 0.0 and np.isnan(medians["c"])
    rows = table.splitlines()
    assert "| a | 1 | 100.0% | NO |" in rows and "| b | 2 | 0.0% | yes |" in rows and "| c | 0 | nan% | — |" in rows
    with pytest.raises(ValueError, match="one map a label"):
        he.border_table(cams, y[:2], ["a", "b", "c"])


def test_two_accuracies_says_what_is_missing(tmp_path):
    model_json = tmp_path / "HMT.json"
    model_json.write_text(json.dumps({"test_accuracy": 0.9}))
    text = he.two_accuracies(str(model_json), str(tmp_path / "none.json"))
    assert "| the course's HMT_test | 496 | 0.900 |" in text and "not run" in text
    cv = tmp_path / "cv.json"
    cv.write_text(json.dumps({"quick": False, "folds": [{}, {}]}))
    assert "incomplete" in he.two_accuracies(str(model_json), str(cv))
    cv.write_text(json.dumps({"quick": False, "folds": [{}] * 10, "config": {"epochs": 20},
                              "summary": {"pooled": {"n": 5000, "accuracy": 0.8, "slide_bootstrap95": [0.7, 0.85]}}}))
    text = he.two_accuracies(str(model_json), str(cv))
    assert "| slides held out (10 folds, 20 epochs) | 5000 | 0.800 | 0.700–0.850 (slides resampled) |" in text


def test_course_accuracy_is_none_without_the_file(tmp_path):
    assert he.course_accuracy(str(tmp_path / "HMT.h5"), np.zeros((1, 150, 150, 3)), np.zeros(1)) is None
    assert hmt.TEST_PER_CLASS * len(hmt.CLASS_NAMES) == 496
