"""The benchmark suites behind ``benchmarks/run_all.py``, one module per job.

``machine`` probes the machine and its ceilings, ``timing`` holds the timers, ``agent`` the agent
under test and the rollout every suite runs; ``rollouts``, ``nmf``, ``render`` and ``end_to_end``
are the four suites, each returning a frozen dataclass of plain values; ``record`` is the whole
run's record and its JSON file, ``report`` the markdown tables and the goal checks, and
``profiling`` the cProfile summaries of ``--profile``.
"""
