"""Training the repository's models and evaluating them, shared by ``mnist1d_utils.py`` and
``hmt_utils.py``:

- ``train.py``   one training path (:class:`TrainConfig`, :func:`train_model`): augmentation, weight
  averaging, the best epoch on a validation split; portable saving with provenance
- ``slides.py``  HMT across slides: folds of whole slides, slide-resampled intervals, the slide probe
- ``report.py``  what a trained classifier reports: test accuracy with test-time augmentation, and
  whether Grad-CAM's mass sits on a tile's frame
"""
