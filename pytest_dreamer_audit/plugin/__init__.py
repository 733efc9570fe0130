"""The pytest layer. ``hooks`` (the ``pytest11`` entry point) holds the hooks: options and ini
keys, the marker, the checks at start-up and collection, the report hook; it registers the
fixtures (``fixtures``) and the reporters (``reporting``: the terminal and pytest-html summaries);
``state`` holds what a session validated once and the stash keys; ``audit_object`` the object
behind the ``dreamer_audit`` fixture (``DreamerAudit``); ``audit`` the cache of computed audits,
``cache`` its verified entries, ``preflight`` the start-up checkpoint checks.

``hooks``, ``state``, ``fixtures`` and ``reporting`` import neither torch nor NumPy (pytest loads
them on every run); ``audit_object`` and ``audit`` compute with torch and are imported by the
fixtures on first use. May import every other layer.
"""
