"""The model layer: networks, the DreamerV2 agent, counter-based sampling, checkpoints, devices.

Imports torch. May import: ``errors``, ``games``, ``files``.
"""
