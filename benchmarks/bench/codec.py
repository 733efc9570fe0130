"""JSON at the edge: frozen result dataclasses to plain JSON values and back.

A dataclass becomes an object whose keys are its fields in declaration order (so the field order
is the file's key order) and tuples become lists; a field declared with
``field(default=None, metadata=OMIT_NONE)`` is left out while it is None. A class with its own
``to_json`` / ``from_json`` uses those. Reading fills absent keys from the field defaults, so
files written before a field existed still load, and ignores keys it does not know.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")
_OMIT_KEY = "omit_none"
OMIT_NONE = types.MappingProxyType({_OMIT_KEY: True})
"""Field metadata: leave the key out of the JSON while the value is None."""


class ResultsFileError(ValueError):
    """A results file that does not have the keys ``run_all.py`` writes."""


def to_json(value: object) -> Any:
    """Plain JSON values (dicts, lists, strings, numbers, None) of ``value``."""
    custom = getattr(value, "to_json", None)
    if callable(custom):
        return custom()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_json(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get(_OMIT_KEY) and getattr(value, f.name) is None)
        }
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def from_json(kind: type[T], data: Any) -> T:
    """The ``kind`` (a dataclass, usually) that :func:`to_json` turned into ``data``."""
    value: T = _read(kind, data, kind.__name__)
    return value


def _read(kind: Any, data: Any, where: str) -> Any:
    origin = get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        if data is None:
            return None
        (inner,) = (arg for arg in get_args(kind) if arg is not type(None))
        return _read(inner, data, where)
    if origin is tuple:
        item = get_args(kind)[0]  # tuple[X, ...]
        return tuple(_read(item, value, f"{where}[]") for value in data)
    if origin is dict:
        item = get_args(kind)[1]
        return {key: _read(item, value, f"{where}.{key}") for key, value in data.items()}
    custom = getattr(kind, "from_json", None)
    if callable(custom):
        return custom(data)
    if dataclasses.is_dataclass(kind):
        return _read_dataclass(kind, data, where)
    return data


def _read_dataclass(kind: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ResultsFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
    hints = get_type_hints(kind)
    fields = [f for f in dataclasses.fields(kind) if f.init]
    required = [
        f.name
        for f in fields
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if required:
        raise ResultsFileError(
            f"{where}: missing {', '.join(required)}; is this a results file written by "
            "benchmarks/run_all.py?"
        )
    return kind(
        **{
            f.name: _read(hints[f.name], data[f.name], f"{where}.{f.name}")
            for f in fields
            if f.name in data
        }
    )
