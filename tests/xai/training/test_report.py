"""xai/training/report.py: what a trained classifier reports (test accuracy with test-time augmentation,
whether Grad-CAM's mass sits on a tile's frame), checked on tiny stand-ins."""
import keras
import numpy as np
import pytest

import xai.training.report as he


def _constant_model(k: int = 8, favourite: int = 2):
    inp = keras.Input((150, 150, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inp)                    # (N, 3)
    logits = keras.layers.Dense(k, kernel_initializer="zeros",
                                bias_initializer=keras.initializers.Constant(np.eye(k)[favourite] * 5))(pooled)
    return keras.Model(inp, keras.layers.Softmax()(logits))


def test_test_accuracy_counts_right_answers_with_and_without_tta():
    x = np.zeros((8, 150, 150, 3), np.uint8)
    y = np.array([2, 2, 2, 0, 1, 3, 4, 5])
    result = he.test_accuracy(_constant_model(), x, y, batch_size=3)
    assert result["n_correct"] == 3 and result["n"] == 8 and result["accuracy"] == 3 / 8
    assert result["tta_accuracy"] == 3 / 8 and result["prob"].shape == (8, 8)
    with pytest.raises(ValueError, match="as long"):
        he.test_accuracy(_constant_model(), x, y[:3])


def test_border_table_gives_each_class_its_median_border_share_and_verdict():
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
