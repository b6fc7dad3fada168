"""Evaluation of keypoint methods on datasets (``python -m models.evaluate``), shared by later issues.

Registries: ``datasets.DATASETS`` (name -> reader) and ``methods.METHODS`` (name -> method factory); a new
dataset or method plugs in with ``register_dataset`` / ``register_method``.
"""
