"""Helpers that the explain_dataset tests run in other processes too (importable by the same name)."""
import time

import xai_utils


def slow_grad_cam(model, x, class_index=None, *, delay: float = 0.1, **options):
    """Grad-CAM that takes ``delay`` seconds a batch, so a test can kill a run half-way."""
    time.sleep(delay)
    return xai_utils.grad_cam(model, x, class_index, **options)
