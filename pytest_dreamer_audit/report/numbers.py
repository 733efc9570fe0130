"""How every report writes a number: the one rule for NaN and the digits shown.

Standard library only. NaN means "not computed" everywhere in the package (a metric that was
not asked for, a null that could not be drawn), so it is written ``n/a``; infinities are written
``inf`` / ``-inf`` (a ratio over zero is a measurement, not a missing one).
"""

from __future__ import annotations

import math

__all__ = ["format_number", "format_percent"]


def format_number(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits; NaN as ``n/a``.

    Example:
        >>> format_number(0.251234), format_number(2.804e-06), format_number(float("nan"))
        ('0.2512', '2.804e-06', 'n/a')
    """
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:.{digits}g}"


def format_percent(value: float) -> str:
    """A fraction as a whole percentage; NaN as ``n/a``.

    Example:
        >>> format_percent(0.256), format_percent(float("nan"))
        ('26%', 'n/a')
    """
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:.0%}"
