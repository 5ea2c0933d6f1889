"""Applications built on top of the keras-indi library.

This subpackage holds end-user programs rather than library code:

- :mod:`keras_indi.apps.cli`: the ``keras-indi`` command line
  (also ``python -m keras_indi``).
- :mod:`keras_indi.apps.quickstart`: the one-call train/restore quickstart.
- :mod:`keras_indi.apps.experiments`: the reproducible experiment runner.

Applications may import anything from the library; the library never
imports from ``keras_indi.apps`` (not even lazily inside functions).
``tests/test_architecture.py`` enforces that direction.
"""
