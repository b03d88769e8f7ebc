"""Planted shortcuts: ground truth for comparing explanation methods.

A marker is planted into one class's training data, so that a model comes to rely on it; then each
method is asked whether its maps put relevance on the marker, and whether they do so only when the
model uses it (against two controls: Clark et al. 2026's model that saw the marker in every class
alike, and Adebayo et al. 2022's clean model explained on marked inputs).

    markers.py     add_marker (a zigzag on signals, a faint checkerboard or a hue shift on images), which
                   training examples carry it
    scores.py      reliance (flip rate, accuracy drop on removal), reference maps (random, edge),
                   mass and rank on the marker, detection AUROC, rank agreement with ROAD
    benchmark.py   the settings, their models and data, training and scoring one model
    report.py      the results JSON, tables, figures and the README's sentence, from the records

``tools/shortcut_benchmark.py`` runs it, resumably; the results are in ``models/shortcut/``.
"""
