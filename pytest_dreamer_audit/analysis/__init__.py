"""The analysis layer: NMF of the posteriors, importance scores, trust metrics, the pipeline.

Imports torch; the only importer of torchnmf (``factorize``). May import: ``model``, ``rollout``,
``results`` (to build its torch-free outputs), ``errors``, ``games``.
"""
