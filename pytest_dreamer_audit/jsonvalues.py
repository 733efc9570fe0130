"""Numbers at the JSON edge: NaN and infinity are written as ``null`` and read back as NaN.

Standard library only (the plugin's report hooks use it on every pytest run). Strict JSON has no
NaN, and a metric that could not be computed (no refits, no agent) is NaN inside the package.
"""

from __future__ import annotations

import math
from typing import TypeVar

T = TypeVar("T")

__all__ = ["from_json_number", "to_json_number"]


def to_json_number(value: T) -> T | None:
    """``value``, or None where it is a non-finite float."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def from_json_number(value: object) -> float:
    """A number read from JSON: None -> NaN; anything else must be a real number."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number or null, got {type(value).__name__} {value!r}")
    return float(value)
