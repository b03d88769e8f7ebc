"""Training the repository's models and evaluating them, shared by ``mnist1d_utils.py`` and
``hmt_utils.py``:

- ``train.py``   one training path (:class:`TrainConfig`, :func:`train_model`): augmentation, weight
  averaging, the best epoch on a validation split
- ``splits.py``  validation splits: stratified, and grouped (whole source images on one side)
- ``saving.py``  portable saving with provenance; the course's legacy models
- ``augment.py`` the tiles' flips, rotations, colour jitter and crops; test-time augmentation
- ``slides.py``  HMT across slides: folds of whole slides, slide-resampled intervals, the slide probe
- ``slide_figures.py`` the slide cross-validation's figures
- ``stain.py``, ``padding.py``, ``vgg.py``: stain augmentation ops, reflect padding, the VGG-7
- ``ablation.py``, ``colour_baseline.py``: the stain/padding ablation's tables, a colour-only baseline
- ``report.py``  what a trained classifier reports: test accuracy with test-time augmentation, and
  whether Grad-CAM's mass sits on a tile's frame (its figures are in ``xai/plots.py``)
"""
