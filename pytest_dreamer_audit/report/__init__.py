"""The report layer: rendering the pictures, the per-audit bundle, HTML tables and artifacts.

Torch-free. ``render`` imports NumPy and matplotlib; ``html`` imports only the standard library,
because the plugin imports it on every pytest run. May import: ``results``, ``errors``, ``games``,
``files``.
"""
