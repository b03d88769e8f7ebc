"""Helpers that the explain_dataset tests run in other processes too: imported by the same name,
``tests.dataset_helpers``, there and in the test (the file records the method by its module and name)."""
import time

from xai.methods.cam import grad_cam


def slow_grad_cam(model, x, class_index=None, *, delay: float = 0.1, **options):
    """Grad-CAM that takes ``delay`` seconds a batch, so a test can kill a run half-way."""
    time.sleep(delay)
    return grad_cam(model, x, class_index, **options)
