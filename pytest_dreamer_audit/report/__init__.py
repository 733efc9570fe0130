"""The report layer: rendering the pictures, the per-audit bundle, HTML tables and artifacts.

Torch-free. ``render`` imports NumPy and matplotlib; ``html`` (the pytest-html extras),
``tables`` (the claims tables), ``numbers`` (the one number format) and ``records`` import only
the standard library, because the plugin imports them on every pytest run; ``page`` builds
``dreamer-audit explain``'s ``index.html`` from the same pieces. May import: ``results``,
``errors``, ``games``, ``files``.
"""
