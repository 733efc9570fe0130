"""The pytest layer: options, the marker, hooks and fixtures (``hooks``, the ``pytest11`` entry
point), the ``dreamer_audit`` fixture's object (``fixtures``), the audit cache and start-up checks.

``hooks`` imports neither torch nor NumPy (pytest loads it on every run); ``audit`` computes with
torch and is imported by the fixtures on first use. May import every other layer.
"""
