"""The results layer: the saved explanation, factor semantics, assertions, baselines.

Torch-free (NumPy and SciPy only), so reading results never pays for torch. May import:
``errors``, ``games``, ``files``.
"""
