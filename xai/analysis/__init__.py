"""Comparing methods: statistics, the comparison on one set of examples, and the settings sweep.

- ``stats.py``    bootstrap intervals, paired differences, Holm's adjustment: written once
- ``compare.py``  every metric on the same examples, the tables and the orderings with their intervals
- ``sweep.py``    every method in each of its settings under every removal setting, and the verdicts
- ``sweep_store.py`` the sweep on many examples in stored batches: resumed, keyed by model and data, loaded
- ``metric_agreement.py`` which metrics agree: Kendall's tau between their rankings of the methods
- ``artefacts.py`` the network's own marks in its maps: a pile in the centre, a checkerboard, a frame
- ``gridpg.py``    the grid pointing game (Rao et al. 2022) on a model: mosaics of classes, each cell explained
- ``summaries.py`` the tools' records (sanity three ways, GridPG, agreement) as tables, figures and sentences
- ``gallery.py``   maps to look at: one example under every method; the sanity cascade's maps
"""
