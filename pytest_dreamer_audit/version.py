"""The package version: one place, below every layer (the cache keys and manifests read it)."""

__version__ = "0.1.0"
