"""Metrics of explanations, split by job:

- ``removal.py``      faithfulness: ROAD's imputation, MoRF / LeRF / SRG, deletion / insertion, average drop
- ``localisation.py`` against a ground-truth mask (relevance mass, pointing game) and the frame's share
- ``sanity.py``       the cascading model-randomisation test
- ``agreement.py``    rank agreement between maps
"""
