"""The rollout layer: MinAtar games stepped as a batch with their game facts, batched rollouts.

``envs`` imports NumPy only; ``rollouts`` imports torch. May import: ``model``, ``errors``,
``games``, ``files``.
"""
