"""Seeded fuzzing of :func:`load_checkpoint` (issue 5, "Hardening").

Valid checkpoints of both formats (reference: ``native=False``; native) are mutated: truncated,
byte-flipped, with missing, extra or renamed modules and parameters, wrong shapes and dtypes,
non-finite weights, non-tensor objects where tensors or state_dicts belong, corrupted metadata,
exotic tensors and containers, and pickles that would run code. Every case must end in a
:class:`CheckpointError` subclass (:class:`ConfigError` for bad arguments) or load an agent that
runs; no other exception, no slow case, and no pickle payload ever runs. Where the check that
catches a mutation is known (a required module removed, a parameter renamed, a shape
contradicted, a dtype changed, a metadata field broken), the exact error class is asserted
(section "mutations with a known outcome").

Scale and report (nothing is registered in pyproject):

* ``DREAMER_AUDIT_FUZZ_EXAMPLES`` (default 500): the total number of cases, split over the
  mutation kinds by fixed shares; e.g. 5000 for a long run.
* ``DREAMER_AUDIT_FUZZ_REPORT=path.json``: write the outcome counts per mutation kind there when
  the module finishes (under xdist one file per worker: ``path.gw0.json``, ...).

Hypothesis runs derandomized (a fixed seed per test) and without its example database, so every
run tries the same cases.
"""

from __future__ import annotations

import builtins
import collections
import io
import json
import os
import pickle
import struct
import subprocess
import time
import warnings
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from pytest_dreamer_audit.errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointKeyError,
    CheckpointShapeError,
    CheckpointValueError,
    ConfigError,
    UnsafeCheckpointError,
)
from pytest_dreamer_audit.games import GAMES
from pytest_dreamer_audit.model.agent import CHECKPOINT_MODULES, AgentMetadata, DreamerAgent
from pytest_dreamer_audit.model.checkpoint import (
    FORMAT_NAME,
    FORMAT_VERSION,
    METADATA_KEY,
    load_checkpoint,
)
from pytest_dreamer_audit.testing import tiny_agent, write_tiny_checkpoint

T = TypeVar("T")
EXAMPLES_ENV = "DREAMER_AUDIT_FUZZ_EXAMPLES"
REPORT_ENV = "DREAMER_AUDIT_FUZZ_REPORT"
TOTAL = int(os.environ.get(EXAMPLES_ENV, "500"))
CASE_SECONDS = 30.0
"""A tiny checkpoint loads in milliseconds; a case this slow is a hang in the making."""
FORMATS = ("reference", "native")
SPLIT: dict[str, Any] = {"categoricals": 4, "classes": 5}
"""The tiny agents' stochastic split: a reference file needs it (20 units is not 20 x 20)."""
PARAMS: tuple[tuple[str, str], ...] = tuple(
    (key, name)
    for key, module in tiny_agent().present_modules().items()
    for name in module.state_dict()
)
OUTCOMES: defaultdict[str, Counter[str]] = defaultdict(Counter)
""""kind/operation" -> outcome ("loaded" or the error class) -> count, for the JSON report."""


FUNCTIONS = ["os.system", "builtins.exec", "subprocess.call"]
CONTAINERS = [
    "torch.save-p2",
    "torch.save-p3",
    "torch.save-p4",
    "torch.save-p5",
    "torch.save-legacy",
    "pickle-p2",
    "pickle-p3",
    "pickle-p4",
    "pickle-p5",
]
PLACES = ["file", "module", "parameter", "metadata"]
DEPTHS = [50, 3000, 20000]
DEEP_PLACES = ["metadata game", "metadata format", "module key", "parameter key", "parameter"]
FIXED_CASES = len(FUNCTIONS) * len(CONTAINERS) * len(PLACES) + len(DEPTHS) * len(DEEP_PLACES)
"""The parametrized grids: code-running pickles (functions x containers x places) and deep
nesting (places x depths). The Hypothesis tests share the rest of the total."""


def _examples(share: int) -> int:
    """This kind's part of the Hypothesis cases: the shares below add up to 800."""
    return max(2, (TOTAL - FIXED_CASES) * share // 800)


def _fuzz(share: int) -> settings:
    return settings(
        max_examples=_examples(share),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


# --- the seeds, the harness and the report ----------------------------------------------------


class Seeds:
    """Pristine tiny checkpoints of both formats and a scratch file to write cases to.

    Not a dataclass: Hypothesis prints the arguments of a failing example (fixtures too) and
    pretty-prints a dataclass field by field; under ``-W error`` its warning about a 600 kB repr
    would replace the real failure.
    """

    def __init__(self, directory: Path, files: Mapping[str, bytes]) -> None:
        self.directory = directory
        self.files = files

    def __repr__(self) -> str:
        return f"Seeds({self.directory})"

    def payload(self, fmt: str) -> dict[Any, Any]:
        """A fresh copy of the pristine file's dict of state_dicts (and metadata)."""
        loaded: dict[Any, Any] = torch.load(io.BytesIO(self.files[fmt]), weights_only=True)
        return loaded

    def write_bytes(self, data: bytes) -> Path:
        path = self.directory / "case.pth"
        path.write_bytes(data)
        return path

    def write(self, payload: object, **save_options: Any) -> Path:
        path = self.directory / "case.pth"
        _quietly(lambda: torch.save(payload, path, **save_options))
        return path


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    directory = tmp_path_factory.mktemp("fuzz")
    files = {
        fmt: write_tiny_checkpoint(
            directory / f"{fmt}.pth", native=fmt == "native", seed=5
        ).read_bytes()
        for fmt in FORMATS
    }
    return Seeds(directory, files)


@pytest.fixture(scope="module", autouse=True)
def _outcome_report() -> Iterator[None]:
    """Write the outcome counts to $DREAMER_AUDIT_FUZZ_REPORT when the module is done."""
    yield
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    path = Path(target)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        path = path.with_name(f"{path.stem}.{worker}{path.suffix}")
    groups: defaultdict[str, dict[str, Counter[str]]] = defaultdict(dict)
    for kind, counts in OUTCOMES.items():
        group, _, operation = kind.partition("/")
        groups[group][operation or group] = counts
    kinds = {
        group: {
            **_tally(sum(operations.values(), Counter())),
            "operations": {op: _tally(c) for op, c in sorted(operations.items())},
        }
        for group, operations in sorted(groups.items())
    }
    report = {
        "examples_setting": TOTAL,
        "total": _tally(sum(OUTCOMES.values(), Counter())),
        "kinds": kinds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _tally(counts: Counter[str]) -> dict[str, Any]:
    return {
        "cases": sum(counts.values()),
        "loaded": counts["loaded"],
        "typed_errors": sum(n for outcome, n in counts.items() if outcome != "loaded"),
        "outcomes": dict(sorted(counts.items())),
    }


def _exercise(agent: DreamerAgent) -> None:
    """A loaded agent has finite weights and runs one filtering step and an action."""
    bad = [name for name, p in agent.named_parameters() if not bool(torch.isfinite(p).all())]
    assert not bad, f"loaded non-finite weights in {bad}"
    sizes = agent.sizes
    with torch.no_grad():
        state = agent.initial_state(1)
        obs = torch.zeros(1, sizes.channels, 10, 10)
        action = agent.one_hot_actions(torch.zeros(1, dtype=torch.long))
        _prior, posterior = agent.observe(state, obs, action)
        assert posterior.logits.shape == (1, sizes.categoricals, sizes.classes)
        assert agent.act(posterior).shape == (1,)


def _load(kind: str, path: Path, **options: Any) -> str:
    """Load ``path``; return "loaded" or the error's class name. Anything else propagates.

    ``kind`` is "group/operation" (the report counts both levels)."""
    start = time.perf_counter()
    failure: CheckpointError | ConfigError | None = None
    try:
        agent = load_checkpoint(path, **options)
    except (CheckpointError, ConfigError) as error:
        failure = error
    if failure is None:
        _exercise(agent)
        outcome = "loaded"
    elif isinstance(failure, CheckpointError):
        assert failure.path == str(path)
        assert str(failure).startswith(str(path))
        outcome = type(failure).__name__
    else:
        assert kind.startswith("arguments"), f"a ConfigError is for bad arguments only: {failure}"
        outcome = "ConfigError"
    elapsed = time.perf_counter() - start
    assert elapsed < CASE_SECONDS, f"{kind}: one case took {elapsed:.1f} s"
    OUTCOMES[kind][outcome] += 1
    return outcome


def _quietly(make: Callable[[], T]) -> T:
    """Build a case without warnings: torch warns once per process (TORCH_WARN_ONCE) about
    complex32 or quantized tensors, and under ``-W error`` a warning that fires only on the first
    example makes Hypothesis report flaky data generation. Loading stays under ``-W error``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make()


def _options(fmt: str, use_metadata: bool) -> dict[str, Any]:
    """The split for a reference file; a native file may rely on its metadata instead."""
    return {} if fmt == "native" and use_metadata else dict(SPLIT)


# --- strategies -------------------------------------------------------------------------------

formats = st.sampled_from(FORMATS)
params = st.sampled_from(PARAMS)


def _small_tensor(shape: list[int], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(shape, generator=generator)


small_tensors = st.builds(
    _small_tensor, st.lists(st.integers(0, 6), min_size=0, max_size=3), st.integers(0, 99)
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.complex_numbers(max_magnitude=1e6),
    st.sampled_from([torch.float32, torch.device("cpu"), torch.Size([3, 4]), bytearray(b"x")]),
    small_tensors,
)
junk = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=3),
        st.sets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)
"""Nested plain objects that torch's weights-only unpickler can rebuild (sets and bytearrays
too), with small tensors among them."""

MODULE_NEAR_MISSES = [
    *CHECKPOINT_MODULES,
    METADATA_KEY,
    "rssm",
    "Rssm",
    "RSSM ",
    "module.RSSM",
    "ObsEncoder.",
    "actor",
    "ActionModel\x00",
    "",
    "DreamerAuditMetadata ",
]
module_names = st.one_of(st.sampled_from(MODULE_NEAR_MISSES), st.text(max_size=12))
param_names = st.one_of(
    st.sampled_from(
        [
            "model.6.weight",
            "model.1.weight",
            "model.0.weight_orig",
            "fc_1.weight",
            "rnn.weight",
            "model.0",
            "model.00.weight",
            "model.-2.bias",
            "model.\u0664.weight",  # an Arabic-Indic digit: \d matches it
            "",
        ]
    ),
    st.sampled_from([1, 9, 10, 19, 4301, 6000]).map(lambda n: f"model.{'8' * n}.weight"),
    st.text(max_size=16),
    st.sampled_from([name for _key, name in PARAMS]),
)
non_string_keys = st.one_of(
    st.integers(), st.none(), st.binary(max_size=4), st.tuples(st.text(max_size=3)), st.floats()
)


# --- byte-level mutations ---------------------------------------------------------------------


def _pickle_span(data: bytes) -> tuple[int, int]:
    """Byte range of ``data.pkl`` (stored uncompressed) inside a torch zip checkpoint."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data.pkl"))
    header = info.header_offset
    name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
    start = header + 30 + name_length + extra_length
    return start, start + info.compress_size


@_fuzz(80)
@given(fmt=formats, data=st.data())
def test_truncation_at_any_offset(seeds: Seeds, fmt: str, data: st.DataObject) -> None:
    original = seeds.files[fmt]
    cut = data.draw(st.integers(0, len(original) - 1), label="offset")
    outcome = _load(f"truncate/{fmt}", seeds.write_bytes(original[:cut]), **SPLIT)
    assert outcome == "CheckpointFormatError"


@_fuzz(150)
@given(fmt=formats, data=st.data(), use_metadata=st.booleans())
def test_flipped_bytes(seeds: Seeds, fmt: str, data: st.DataObject, use_metadata: bool) -> None:
    """Flips anywhere, and (half of them) inside the pickle, where they change the structure."""
    damaged = bytearray(seeds.files[fmt])
    start, end = _pickle_span(seeds.files[fmt])
    for _ in range(data.draw(st.integers(1, 8), label="flips")):
        in_pickle = data.draw(st.booleans(), label="in pickle")
        low, high = (start, end - 1) if in_pickle else (0, len(damaged) - 1)
        position = data.draw(st.integers(low, high), label="position")
        damaged[position] ^= data.draw(st.integers(1, 255), label="xor")
    _load(f"flip/{fmt}", seeds.write_bytes(bytes(damaged)), **_options(fmt, use_metadata))


# --- structural mutations ---------------------------------------------------------------------


def _state_dict_or_junk(data: st.DataObject, payload: dict[str, Any]) -> object:
    if data.draw(st.booleans(), label="a real state_dict"):
        key = data.draw(st.sampled_from(list(CHECKPOINT_MODULES)), label="copied module")
        return dict(payload[key])
    return data.draw(junk, label="junk")


@_fuzz(60)
@given(fmt=formats, data=st.data(), use_metadata=st.booleans())
def test_top_level_keys(seeds: Seeds, fmt: str, data: st.DataObject, use_metadata: bool) -> None:
    """Missing, extra, renamed and non-string module keys."""
    payload = seeds.payload(fmt)
    operation = data.draw(st.sampled_from(["drop", "extra", "rename", "non-string"]), label="op")
    key = data.draw(st.sampled_from(sorted(payload)), label="key")
    if operation == "drop":
        del payload[key]
    elif operation == "extra":
        payload[data.draw(module_names, label="name")] = _state_dict_or_junk(data, payload)
    elif operation == "rename":
        payload[data.draw(module_names, label="new name")] = payload.pop(key)
    else:
        payload[data.draw(non_string_keys, label="non-string key")] = payload.pop(key)
    _load(f"top_keys/{operation}", seeds.write(payload), **_options(fmt, use_metadata))


@_fuzz(80)
@given(fmt=formats, target=params, data=st.data(), use_metadata=st.booleans())
def test_parameter_keys(
    seeds: Seeds, fmt: str, target: tuple[str, str], data: st.DataObject, use_metadata: bool
) -> None:
    """Missing, extra, renamed, swapped and non-string parameter names."""
    payload = seeds.payload(fmt)
    key, name = target
    state = payload[key]
    operation = data.draw(
        st.sampled_from(["drop", "extra", "rename", "prefix", "swap", "non-string"]), label="op"
    )
    if operation == "drop":
        del state[name]
    elif operation == "extra":
        value = data.draw(st.one_of(st.just(state[name].clone()), small_tensors), label="value")
        state[data.draw(param_names, label="name")] = value
    elif operation == "rename":
        state[data.draw(param_names, label="new name")] = state.pop(name)
    elif operation == "prefix":  # what DataParallel or torch.compile leave in a state_dict
        prefix = data.draw(st.sampled_from(["module.", "_orig_mod.", "agent."]), label="prefix")
        payload[key] = {prefix + n: t for n, t in state.items()}
    elif operation == "swap":
        other = data.draw(st.sampled_from(sorted(state)), label="other")
        state[name], state[other] = state[other], state[name]
    else:
        state[data.draw(non_string_keys, label="non-string key")] = state.pop(name)
    _load(f"param_keys/{operation}", seeds.write(payload), **_options(fmt, use_metadata))


def _reshaped(data: st.DataObject, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
    shape = list(tensor.shape)
    operation = data.draw(
        st.sampled_from(["random", "unsqueeze", "flatten", "transpose", "resize", "zero"]),
        label="shape op",
    )
    if operation == "random":
        shape = data.draw(st.lists(st.integers(0, 40), max_size=4), label="shape")
    elif operation == "unsqueeze":
        shape.insert(data.draw(st.integers(0, len(shape)), label="at"), 1)
    elif operation == "flatten":
        shape = [tensor.numel()]
    elif operation == "transpose":
        shape = shape[::-1]
    elif operation in ("resize", "zero") and shape:
        axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
        change = data.draw(st.integers(-3, 3), label="change") if operation == "resize" else 0
        shape[axis] = max(0, shape[axis] + change) if operation == "resize" else 0
    return operation, _small_tensor(shape, data.draw(st.integers(0, 99), label="values"))


@_fuzz(60)
@given(fmt=formats, target=params, data=st.data(), use_metadata=st.booleans())
def test_wrong_shapes(
    seeds: Seeds, fmt: str, target: tuple[str, str], data: st.DataObject, use_metadata: bool
) -> None:
    payload = seeds.payload(fmt)
    key, name = target
    operation, payload[key][name] = _reshaped(data, payload[key][name])
    _load(f"shapes/{operation}", seeds.write(payload), **_options(fmt, use_metadata))


HUGE = [10**5, 10**7, 10**9, 2**40, 2**62]


@_fuzz(40)
@given(fmt=formats, target=params, data=st.data(), use_metadata=st.booleans())
def test_absurd_declared_sizes(
    seeds: Seeds, fmt: str, target: tuple[str, str], data: st.DataObject, use_metadata: bool
) -> None:
    """Tiny files declaring huge sizes: an empty tensor with a huge dimension (the inferred
    network would not fit in memory) or a stride-0 view of one number with a huge shape."""
    payload = seeds.payload(fmt)
    key, name = target
    shape = list(payload[key][name].shape)
    empty = data.draw(st.booleans(), label="empty")
    if empty:
        shape = shape or [1]
        axis = data.draw(st.integers(0, len(shape) - 1), label="huge axis")
        shape[axis] = data.draw(st.sampled_from(HUGE), label="huge")
        if len(shape) > 1:
            shape[(axis + 1) % len(shape)] = 0
        else:
            shape.append(0)
        try:
            value = torch.zeros(shape)
        except RuntimeError:  # torch cannot even describe it (strides overflow int64)
            reject()
    else:
        sides = st.sampled_from([1, 2, 48, 1000, 10**5, 10**6])
        dims = data.draw(st.lists(sides, min_size=1, max_size=3), label="expanded shape")
        value = torch.zeros(1).expand(*dims)
    payload[key][name] = value
    _load(
        f"absurd_shapes/{'empty' if empty else 'stride-0 view'}",
        seeds.write(payload),
        **_options(fmt, use_metadata),
    )


def _savable(dtype: torch.dtype) -> bool:
    def round_trip() -> None:
        buffer = io.BytesIO()
        torch.save(torch.zeros(2, dtype=dtype), buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)

    try:
        _quietly(round_trip)
    except Exception:
        return False
    return True


DTYPES = [
    d
    for d in dict.fromkeys(v for v in vars(torch).values() if isinstance(v, torch.dtype))
    if _savable(d)
]
LOSSLESS_ENOUGH = {torch.float16, torch.bfloat16, torch.float64}
"""Floating dtypes the tiny weights survive: a file using them must load."""


def _as_dtype(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    try:
        return tensor.to(dtype)
    except Exception:  # sub-byte and bit dtypes have no conversion: same bytes, new dtype
        return torch.zeros(tensor.shape, dtype=dtype)


@_fuzz(50)
@given(
    fmt=formats,
    target=params,
    dtype=st.sampled_from(DTYPES),
    scale=st.sampled_from([1.0, 1.0, 1e39, 1e300]),
    use_metadata=st.booleans(),
)
def test_dtypes(
    seeds: Seeds,
    fmt: str,
    target: tuple[str, str],
    dtype: torch.dtype,
    scale: float,
    use_metadata: bool,
) -> None:
    """Integer, bool and complex weights are refused; float16, bfloat16 and float64 load; float64
    beyond float32's range would become infinity and is refused."""
    payload = seeds.payload(fmt)
    key, name = target
    tensor = payload[key][name]
    if dtype == torch.float64:
        tensor = tensor.double() * scale
    payload[key][name] = _quietly(lambda: _as_dtype(tensor, dtype))
    largest = float(tensor.abs().max())
    beyond = largest > 2 * torch.finfo(torch.float32).max  # rounds to infinity in float32
    within = largest < torch.finfo(torch.float32).max
    kind = f"dtypes/{str(dtype).removeprefix('torch.')}" + (" beyond float32" if beyond else "")
    outcome = _load(kind, seeds.write(payload), **_options(fmt, use_metadata))
    if dtype in LOSSLESS_ENOUGH and within:
        assert outcome == "loaded"
    elif beyond or not dtype.is_floating_point:
        assert outcome == "CheckpointValueError"


@_fuzz(30)
@given(
    fmt=formats,
    targets=st.lists(params, min_size=1, max_size=3, unique=True),
    data=st.data(),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.float64, torch.bfloat16]),
)
def test_non_finite_weights(
    seeds: Seeds,
    fmt: str,
    targets: list[tuple[str, str]],
    data: st.DataObject,
    dtype: torch.dtype,
) -> None:
    payload = seeds.payload(fmt)
    for key, name in targets:
        tensor = payload[key][name].to(dtype)
        flat = tensor.view(-1)
        index = data.draw(st.integers(0, flat.numel() - 1), label="index")
        flat[index] = data.draw(st.sampled_from([float("nan"), float("inf"), -float("inf")]))
        payload[key][name] = tensor
    outcome = _load(f"nonfinite/{str(dtype).removeprefix('torch.')}", seeds.write(payload), **SPLIT)
    assert outcome == "CheckpointValueError"


@_fuzz(80)
@given(fmt=formats, target=params, data=st.data(), use_metadata=st.booleans())
def test_non_tensor_objects(
    seeds: Seeds, fmt: str, target: tuple[str, str], data: st.DataObject, use_metadata: bool
) -> None:
    """Lists, dicts, strings, None, numbers... where the file, a state_dict, a tensor or the
    metadata belongs."""
    payload: Any = seeds.payload(fmt)
    key, name = target
    value = data.draw(junk, label="junk")
    place = data.draw(
        st.sampled_from(["file", "module", "parameter", "metadata", "metadata field"]),
        label="place",
    )
    if place == "file":
        payload = value
    elif place == "module":
        payload[key] = value
    elif place == "parameter":
        payload[key][name] = value
    elif place == "metadata":
        payload[METADATA_KEY] = value
    else:
        entry = payload.setdefault(METADATA_KEY, _valid_metadata())
        entry[data.draw(st.sampled_from(sorted(entry)), label="field")] = value
    outcome = _load(f"non_tensor/{place}", seeds.write(payload), **_options(fmt, use_metadata))
    expected = {"file": dict, "module": dict, "parameter": torch.Tensor}.get(place)
    if expected is not None and not isinstance(value, expected):
        # Unsafe: protocol 2 pickles b"" as a call of builtins.bytes, which torch refuses.
        assert outcome in {"CheckpointFormatError", "UnsafeCheckpointError"}


def _valid_metadata() -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "game": "freeway",
        "pomdp": True,
        "categoricals": 4,
        "classes": 5,
        "training": {"kind": "fuzz"},
    }


NEAR_VALID: dict[str, list[object]] = {
    "format": [FORMAT_NAME, FORMAT_NAME.upper(), "", None, 1, FORMAT_NAME.encode()],
    "format_version": [1, 0, 2, 1.0, True, "1", None, -1, 2**70, float("nan")],
    "game": [*GAMES, "Freeway", "pong", "", None, 1, ["freeway"], {"freeway": 1}],
    "pomdp": [True, False, None, 0, 1, "true", [True]],
    "categoricals": [4, 2, 1, 20, 5, 0, -4, 4.0, "4", True, None, 2**70, [4]],
    "classes": [5, 10, 20, 1, 4, 0, -5, 5.0, "5", True, None, 2**70, [5]],
    "training": [{}, {"steps": 1}, {1: 2}, [], "x", None, {"nested": {"a": [1, 2]}}],
}


@_fuzz(90)
@given(data=st.data(), pass_split=st.booleans())
def test_metadata_corruptions(seeds: Seeds, data: st.DataObject, pass_split: bool) -> None:
    payload = seeds.payload("native")
    entry = payload[METADATA_KEY]
    operations: set[str] = set()
    for _ in range(data.draw(st.integers(1, 3), label="corruptions")):
        operation = data.draw(
            st.sampled_from(["delete", "near-valid", "junk", "extra field", "replace"]),
            label="op",
        )
        field = data.draw(st.sampled_from(sorted(NEAR_VALID)), label="field")
        operations.add(operation)
        if operation == "delete":
            entry.pop(field, None)
        elif operation == "near-valid":
            entry[field] = data.draw(st.sampled_from(NEAR_VALID[field]), label="value")
        elif operation == "junk":
            entry[field] = data.draw(junk, label="junk")
        elif operation == "extra field":
            entry[data.draw(st.one_of(st.text(max_size=8), non_string_keys))] = data.draw(junk)
        else:
            payload[METADATA_KEY] = data.draw(junk, label="entry")
    _load(
        f"metadata/{'+'.join(sorted(operations))}",
        seeds.write(payload),
        **(SPLIT if pass_split else {}),
    )


# --- exotic tensors and containers ------------------------------------------------------------


class _ShadowedDict:
    """Pickles as an OrderedDict with instance attributes (restored by the BUILD opcode, which
    torch's weights-only unpickler allows for OrderedDict) that shadow its methods."""

    def __init__(self, items: Mapping[Any, Any], attributes: dict[str, Any]) -> None:
        self.items = dict(items)
        self.attributes = attributes

    def __reduce__(self) -> tuple[Any, ...]:
        return (collections.OrderedDict, (), self.attributes, None, iter(self.items.items()))


class _ShadowedTensor:
    """Pickles as a tensor (or Parameter) with instance attributes that shadow its methods,
    through the rebuild functions torch's weights-only unpickler allows. (Setting them on a
    real tensor would break ``torch.save`` itself, which calls some of them.)"""

    def __init__(self, tensor: torch.Tensor, attributes: dict[str, Any], parameter: bool) -> None:
        self.tensor = tensor
        self.attributes = attributes
        self.parameter = parameter

    def __reduce__(self) -> tuple[Any, ...]:
        if self.parameter:
            hooks: collections.OrderedDict[int, Any] = collections.OrderedDict()
            state = (self.tensor, False, hooks, self.attributes)
            return (torch._utils._rebuild_parameter_with_state, state)
        rebuild, arguments = self.tensor._reduce_ex_internal(2)  # type: ignore[no-untyped-call]
        return (
            torch._tensor._rebuild_from_type_v2,
            (rebuild, torch.Tensor, arguments, self.attributes),
        )


def _settable(name: str) -> bool:
    try:
        setattr(torch.zeros(1), name, 0)
    except AttributeError:
        return False
    return True


SHADOWABLE = [
    name
    for name in (
        "is_floating_point",
        "dim",
        "to",
        "size",
        "numel",
        "element_size",
        "untyped_storage",
        "detach",
        "contiguous",
        "float",
        "clone",
        "stride",
        "storage_offset",
        "is_sparse",
        "layout",
        "shape",
        "dtype",
    )
    if _settable(name)
]
"""Tensor methods an instance attribute can shadow (properties cannot be set)."""


def _exotic(kind: str, tensor: torch.Tensor) -> torch.Tensor:
    if kind == "parameter":
        return torch.nn.Parameter(tensor.clone())
    if kind == "requires_grad":
        return tensor.clone().requires_grad_()
    if kind == "non_contiguous":
        strided = torch.zeros(tensor.numel() * 2)[::2]
        strided.copy_(tensor.reshape(-1))
        if tensor.dim() <= 1:
            return strided.view(tensor.shape)
        return tensor.transpose(0, 1).contiguous().transpose(0, 1)
    if kind == "neg_view":
        return torch._neg_view(-tensor)
    if kind == "meta":
        return torch.empty(tensor.shape, device="meta")
    if kind == "sparse_coo":
        return tensor.to_sparse()
    if kind == "sparse_csr":
        return tensor.to_sparse_csr() if tensor.dim() == 2 else tensor.to_sparse()
    if kind == "quantized":
        return torch.quantize_per_tensor(tensor, 0.01, 0, torch.qint8)
    if kind == "nested":
        return torch.nested.nested_tensor([tensor.reshape(-1), tensor.reshape(-1)[:1]])
    assert kind == "expanded"  # one stored number, broadcast (stride 0) to the shape
    return tensor.reshape(-1)[:1].clone().expand(tensor.shape)


EXOTIC = [
    "parameter",
    "requires_grad",
    "non_contiguous",
    "neg_view",
    "meta",
    "sparse_coo",
    "sparse_csr",
    "quantized",
    "nested",
    "expanded",
]
HARMLESS_EXOTIC = {"parameter", "requires_grad", "non_contiguous", "neg_view"}


@_fuzz(60)
@given(fmt=formats, target=params, data=st.data(), use_metadata=st.booleans())
def test_exotic_tensors_and_containers(
    seeds: Seeds, fmt: str, target: tuple[str, str], data: st.DataObject, use_metadata: bool
) -> None:
    """Parameters, views, meta, sparse, quantized and nested tensors; tensors and OrderedDicts
    whose instance attributes shadow the methods a loader calls."""
    payload: Any = seeds.payload(fmt)
    key, name = target
    tensor = payload[key][name]
    operation = data.draw(
        st.sampled_from(["exotic", "shadowed tensor", "shadowed dict"]), label="op"
    )
    kind = ""
    if operation == "exotic":
        kind = data.draw(st.sampled_from(EXOTIC), label="tensor kind")
        payload[key][name] = _quietly(lambda: _exotic(kind, tensor))
    elif operation == "shadowed tensor":
        attributes = data.draw(
            st.dictionaries(st.sampled_from(SHADOWABLE), junk, min_size=1), label="attributes"
        )
        parameter = data.draw(st.booleans(), label="parameter")
        payload[key][name] = _ShadowedTensor(tensor, attributes, parameter)
    else:
        attributes = data.draw(
            st.dictionaries(st.sampled_from(["items", "keys", "values", "get", "pop"]), junk),
            label="attributes",
        )
        where = data.draw(st.sampled_from(["file", "module", "metadata"]), label="where")
        if where == "file":
            payload = _ShadowedDict(payload, attributes)
        elif where == "module":
            payload[key] = _ShadowedDict(payload[key], attributes)
        else:
            entry = payload.get(METADATA_KEY, _valid_metadata())
            payload[METADATA_KEY] = _ShadowedDict(entry, attributes)
    outcome = _load(
        f"exotic/{kind or operation}", seeds.write(payload), **_options(fmt, use_metadata)
    )
    if kind in HARMLESS_EXOTIC:
        assert outcome == "loaded"
    elif kind:
        assert outcome == "CheckpointValueError" or (kind == "expanded" and tensor.numel() == 1)


@_fuzz(20)
@given(
    categoricals=st.one_of(st.none(), st.integers(-5, 25), st.sampled_from([10**30, -(10**30)])),
    classes=st.one_of(st.none(), st.integers(-5, 25), st.sampled_from([10**30, -(10**30)])),
    fmt=formats,
)
def test_split_arguments(
    seeds: Seeds, categoricals: int | None, classes: int | None, fmt: str
) -> None:
    path = seeds.write_bytes(seeds.files[fmt])
    outcome = _load(
        "arguments/categoricals,classes", path, categoricals=categoricals, classes=classes
    )
    if (categoricals is None) != (classes is None):
        assert outcome == "ConfigError"
    elif outcome == "loaded":
        assert (categoricals, classes) in {(4, 5), (2, 10), (1, 20), (5, 4), (10, 2), (20, 1)} or (
            fmt == "native" and categoricals is None
        )


# --- pickles that would run code --------------------------------------------------------------


class _Payload:
    """Unpickling this calls ``function(*arguments)``, which creates a marker file."""

    def __init__(self, function: Callable[..., Any], arguments: tuple[Any, ...]) -> None:
        self.function = function
        self.arguments = arguments

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.function, self.arguments)


def _payload(function: str, marker: Path) -> _Payload:
    if function == "os.system":
        return _Payload(os.system, (f"touch '{marker}'",))
    if function == "builtins.exec":
        return _Payload(builtins.exec, (f"open({str(marker)!r}, 'w').close()",))
    assert function == "subprocess.call"
    return _Payload(subprocess.call, (["touch", str(marker)],))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_payload_really_runs_when_unpickled_unsafely(tmp_path: Path, function: str) -> None:
    """Proof that the payloads below are real: plain ``pickle.loads`` runs them."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_payload(function, marker)))
    assert marker.exists()


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_code_running_pickles_are_refused_and_never_run(
    seeds: Seeds, tmp_path: Path, function: str, container: str, place: str
) -> None:
    marker = tmp_path / "pwned"
    evil = _payload(function, marker)
    payload: Any = seeds.payload("native")
    if place == "file":
        payload = evil
    elif place == "module":
        payload["RSSM"] = evil
    elif place == "parameter":
        payload["RSSM"]["rnn.bias_ih"] = evil
    else:
        payload[METADATA_KEY] = evil
    kind, _, variant = container.partition("-")
    if kind == "torch.save":
        options: dict[str, Any] = (
            {"_use_new_zipfile_serialization": False}
            if variant == "legacy"
            else {"pickle_protocol": int(variant[1])}
        )
        path = seeds.write(payload, **options)
    else:
        path = seeds.write_bytes(pickle.dumps(payload, protocol=int(variant[1])))
    outcome = _load(f"pickle_payloads/{container}", path)
    assert outcome in {UnsafeCheckpointError.__name__, CheckpointFormatError.__name__}
    assert not marker.exists()


# --- deep nesting, written opcode by opcode ---------------------------------------------------

SENTINEL = "ZZ-FUZZ-SENTINEL-ZZ"


def _inject(payload: object, opcodes: bytes) -> bytes:
    """``torch.save(payload)`` with the pickled string SENTINEL replaced by raw opcodes."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    encoded = SENTINEL.encode()
    pickled = b"X" + struct.pack("<I", len(encoded)) + encoded  # BINUNICODE
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target,
    ):
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith("/data.pkl"):
                assert content.count(pickled) == 1
                content = content.replace(pickled, opcodes)
            target.writestr(info.filename, content)
    return out.getvalue()


def _nested_list(depth: int) -> bytes:
    return b"]" * depth + b"a" * (depth - 1)  # EMPTY_LIST x depth, APPEND x (depth - 1)


def _nested_tuple(depth: int) -> bytes:
    return b")" + b"\x85" * depth  # EMPTY_TUPLE, then TUPLE1 x depth


# CPython hashes nested tuples recursively without a depth check: torch.load itself crashes
# (SIGSEGV) on a dict key nested a few million deep. Depths here stay far below that.
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("place", DEEP_PLACES)
def test_deeply_nested_objects(seeds: Seeds, depth: int, place: str) -> None:
    payload = seeds.payload("native")
    opcodes = _nested_list(depth)
    if place == "metadata game":
        payload[METADATA_KEY]["game"] = SENTINEL
    elif place == "metadata format":
        payload[METADATA_KEY]["format"] = SENTINEL
    elif place == "module key":
        payload[SENTINEL] = {}
        opcodes = _nested_tuple(depth)
    elif place == "parameter key":
        payload["RSSM"][SENTINEL] = torch.zeros(1)
        opcodes = _nested_tuple(depth)
    else:
        payload["RSSM"]["rnn.bias_ih"] = SENTINEL
    path = seeds.write_bytes(_inject(payload, opcodes))
    assert _load(f"deep_nesting/{place}", path) in {
        CheckpointFormatError.__name__,
        CheckpointKeyError.__name__,
    }


# --- mutations with a known outcome -----------------------------------------------------------
# The fuzz cases above only require that nothing untyped escapes. For these mutations the check
# that catches them is known, so the exact class is asserted (not a subclass, not a sibling),
# over every module or every parameter of the tiny agent. Parameter sweeps use the reference
# format: a native file differs only by its metadata entry, which they leave alone.

REQUIRED = ("RSSM", "ObsEncoder", "ActionModel")
"""The modules a checkpoint cannot do without (encoder, world model, actor)."""
OPTIONAL = tuple(key for key in CHECKPOINT_MODULES if key not in REQUIRED)
MODULES = tuple(dict.fromkeys(key for key, _name in PARAMS))
DOTTED = tuple(f"{key}.{name}" for key, name in PARAMS)
"""Every parameter as messages name it: ``"RSSM.rnn.bias_ih"``."""
REFUSED_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64]
LOADABLE_DTYPES = [torch.float16, torch.bfloat16, torch.float64]


Outcome = tuple[type[CheckpointError] | None, str, DreamerAgent | None]
"""``(the error's exact class, its problem, None)`` of a refusal, ``(None, "", agent)`` of a load."""


def _known(kind: str, path: Path, **options: Any) -> Outcome:
    """Load ``path``; its :data:`Outcome`."""
    failure: CheckpointError | None = None
    try:
        agent = load_checkpoint(path, **options)
    except CheckpointError as error:
        failure = error
    if failure is None:
        _exercise(agent)
        OUTCOMES[f"known/{kind}"]["loaded"] += 1
        return None, "", agent
    assert failure.path == str(path)
    OUTCOMES[f"known/{kind}"][type(failure).__name__] += 1
    return type(failure), failure.problem, None


def _sweep(
    seeds: Seeds, kind: str, mutate: Callable[[dict[str, Any], str, str], None]
) -> dict[str, Outcome]:
    """``mutate(payload, key, name)`` applied to each parameter of a fresh reference payload in
    turn; the outcome of loading each, keyed ``"key.name"``."""
    outcomes: dict[str, Outcome] = {}
    for key, name in PARAMS:
        payload = seeds.payload("reference")
        mutate(payload, key, name)
        outcomes[f"{key}.{name}"] = _known(kind, seeds.write(payload), **SPLIT)
    return outcomes


def _classes(outcomes: Mapping[str, Outcome]) -> dict[str, type[CheckpointError] | None]:
    return {where: outcome[0] for where, outcome in outcomes.items()}


def _every(error: type[CheckpointError] | None) -> dict[str, type[CheckpointError] | None]:
    return dict.fromkeys(DOTTED, error)


@pytest.mark.parametrize("module", REQUIRED)
@pytest.mark.parametrize("fmt", FORMATS)
def test_known_a_removed_required_module_is_a_key_error(
    seeds: Seeds, fmt: str, module: str
) -> None:
    payload = seeds.payload(fmt)
    del payload[module]
    error, problem, _ = _known("remove required module", seeds.write(payload), **SPLIT)
    assert error is CheckpointKeyError
    assert problem.startswith(f"missing modules [{module!r}]; a DreamerV2 checkpoint has")


@pytest.mark.parametrize("module", OPTIONAL)
@pytest.mark.parametrize("fmt", FORMATS)
def test_known_a_removed_optional_module_loads_without_it(
    seeds: Seeds, fmt: str, module: str
) -> None:
    payload = seeds.payload(fmt)
    del payload[module]
    error, _, agent = _known("remove optional module", seeds.write(payload), **SPLIT)
    assert error is None
    assert agent is not None
    assert set(agent.present_modules()) == set(CHECKPOINT_MODULES) - {module}


@pytest.mark.parametrize("rename", ["lower", "prefix", "space"])
@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_known_a_renamed_module_is_a_key_error_naming_both_names(
    seeds: Seeds, fmt: str, module: str, rename: str
) -> None:
    new = {"lower": module.lower(), "prefix": f"module.{module}", "space": f"{module} "}[rename]
    payload = seeds.payload(fmt)
    payload[new] = payload.pop(module)
    error, problem, _ = _known(f"rename module/{rename}", seeds.write(payload), **SPLIT)
    assert error is CheckpointKeyError
    assert f"unexpected modules [{new!r}]" in problem
    assert (f"missing modules [{module!r}]" in problem) == (module in REQUIRED)


@pytest.mark.parametrize("fmt", FORMATS)
def test_known_a_non_string_module_key_is_a_key_error(seeds: Seeds, fmt: str) -> None:
    payload = seeds.payload(fmt)
    payload[7] = payload.pop("RSSM")
    outcome = _known("non-string module key", seeds.write(payload), **SPLIT)
    assert outcome[:2] == (CheckpointKeyError, "has non-string top-level keys 7")


@pytest.mark.parametrize(
    ("value", "shown"), [([1, 2], "list"), (torch.zeros(3), "Tensor"), ("RSSM", "str")]
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_known_a_module_that_is_not_a_state_dict_is_a_format_error(
    seeds: Seeds, fmt: str, value: object, shown: str
) -> None:
    payload = seeds.payload(fmt)
    payload["ActionModel"] = value
    outcome = _known("module not a dict", seeds.write(payload), **SPLIT)
    assert outcome[:2] == (
        CheckpointFormatError,
        f"ActionModel holds a {shown}, expected a state_dict of tensors",
    )


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_known_a_prefixed_state_dict_is_a_key_error(seeds: Seeds, fmt: str, module: str) -> None:
    """What ``DataParallel`` (``module.``) leaves in a state_dict."""
    payload = seeds.payload(fmt)
    payload[module] = {f"module.{name}": tensor for name, tensor in payload[module].items()}
    error, problem, _ = _known("prefixed parameters", seeds.write(payload), **SPLIT)
    assert error is CheckpointKeyError
    assert module in problem


# fc_1 is the encoder's optional projection: without its weight, the encoder's output is the
# 256 convolution features, which contradicts the RSSM's posterior input (16 + 24): a shape error.
WITHOUT_FC_1 = (
    "shapes contradict the sizes inferred from the other tensors: "
    "RSSM.fc_posterior.0.weight is (16, 40), expected (16, 272)"
)


@pytest.mark.parametrize("operation", ["remove", "rename"])
def test_known_a_removed_or_renamed_parameter_is_a_key_error_naming_it(
    seeds: Seeds, operation: str
) -> None:
    def mutate(payload: dict[str, Any], key: str, name: str) -> None:
        tensor = payload[key].pop(name)
        if operation == "rename":
            payload[key][f"{name}_renamed"] = tensor

    outcomes = _sweep(seeds, f"{operation} parameter", mutate)
    assert _classes(outcomes) == {
        **_every(CheckpointKeyError),
        "ObsEncoder.fc_1.weight": CheckpointShapeError,
    }
    assert outcomes["ObsEncoder.fc_1.weight"][1] == WITHOUT_FC_1
    unnamed = [
        where
        for where, (error, problem, _) in outcomes.items()
        if error is CheckpointKeyError and repr(where.split(".", 1)[1]) not in problem
    ]
    assert unnamed == []


def test_known_an_extra_dimension_is_a_shape_error_naming_the_tensor(seeds: Seeds) -> None:
    def mutate(payload: dict[str, Any], key: str, name: str) -> None:
        payload[key][name] = payload[key][name].unsqueeze(0)

    outcomes = _sweep(seeds, "extra dimension", mutate)
    assert _classes(outcomes) == _every(CheckpointShapeError)
    assert [where for where, outcome in outcomes.items() if where not in outcome[1]] == []


@pytest.mark.parametrize("axis", [0, -1])
def test_known_a_contradicted_size_is_a_shape_error(seeds: Seeds, axis: int) -> None:
    """One more unit along the first or last axis of any one tensor: the others disagree."""

    def mutate(payload: dict[str, Any], key: str, name: str) -> None:
        shape = list(payload[key][name].shape)
        shape[axis] += 1
        payload[key][name] = _small_tensor(shape, seed=0)

    outcomes = _sweep(seeds, f"grow axis {axis}", mutate)
    assert _classes(outcomes) == _every(CheckpointShapeError)


def test_known_a_non_floating_dtype_is_a_value_error_naming_tensor_and_dtype(
    seeds: Seeds,
) -> None:
    """Each parameter gets one of the refused dtypes in turn (every dtype covers ~11)."""
    dtypes = {where: REFUSED_DTYPES[i % len(REFUSED_DTYPES)] for i, where in enumerate(DOTTED)}

    def mutate(payload: dict[str, Any], key: str, name: str) -> None:
        payload[key][name] = payload[key][name].to(dtypes[f"{key}.{name}"])

    outcomes = _sweep(seeds, "non-floating dtype", mutate)
    assert _classes(outcomes) == _every(CheckpointValueError)
    assert {where: outcome[1] for where, outcome in outcomes.items()} == {
        where: f"{where} has dtype {dtype}; weights must be floating point"
        for where, dtype in dtypes.items()
    }


def test_known_half_and_double_precision_weights_load_as_their_float32_values(
    seeds: Seeds,
) -> None:
    dtypes = {where: LOADABLE_DTYPES[i % len(LOADABLE_DTYPES)] for i, where in enumerate(DOTTED)}
    pristine = seeds.payload("reference")

    def mutate(payload: dict[str, Any], key: str, name: str) -> None:
        payload[key][name] = payload[key][name].to(dtypes[f"{key}.{name}"])

    outcomes = _sweep(seeds, "floating dtype", mutate)
    assert _classes(outcomes) == _every(None)
    mismatched = []
    for key, name in PARAMS:
        agent = outcomes[f"{key}.{name}"][2]
        assert agent is not None
        loaded = agent.present_modules()[key].state_dict()[name]
        expected = pristine[key][name].to(dtypes[f"{key}.{name}"]).to(torch.float32)
        if loaded.dtype != torch.float32 or not torch.equal(loaded, expected):
            mismatched.append(f"{key}.{name}")
    assert mismatched == []


METADATA_REFUSALS: list[tuple[str, object, type[CheckpointError], str]] = [
    ("game", "pong", CheckpointFormatError, "names game 'pong', not one of"),
    ("game", "Freeway", CheckpointFormatError, "names game 'Freeway', not one of"),
    ("format", "other", CheckpointFormatError, "declares format 'other' version 1"),
    ("format_version", 2, CheckpointFormatError, f"declares format {FORMAT_NAME!r} version 2"),
    (
        "format_version",
        "1",
        CheckpointFormatError,
        f"declares format {FORMAT_NAME!r} version '1'",
    ),
    ("pomdp", "yes", CheckpointFormatError, "has pomdp='yes', expected true, false or none"),
    ("pomdp", 1, CheckpointFormatError, "has pomdp=1, expected true, false or none"),
    (
        "categoricals",
        0,
        CheckpointFormatError,
        "has categoricals=0, classes=5; expected positive",
    ),
    ("categoricals", 4.0, CheckpointFormatError, "has categoricals=4.0, classes=5; expected"),
    ("classes", True, CheckpointFormatError, "has categoricals=4, classes=True; expected"),
    ("training", [1], CheckpointFormatError, "has a 'training' value that is not a dict"),
    ("training", {1: 2}, CheckpointFormatError, "has a 'training' value that is not a dict"),
    ("categoricals", 3, CheckpointShapeError, "3 categoricals x 5 classes = 15, but the"),
]


@pytest.mark.parametrize(
    ("field", "value", "error", "fragment"),
    METADATA_REFUSALS,
    ids=[f"{field}={value!r}" for field, value, _e, _f in METADATA_REFUSALS],
)
def test_known_a_bad_metadata_value_is_refused_with_its_class(
    seeds: Seeds, field: str, value: object, error: type[CheckpointError], fragment: str
) -> None:
    payload = seeds.payload("native")
    payload[METADATA_KEY][field] = value
    outcome = _known("metadata value", seeds.write(payload))
    assert outcome[0] is error
    assert fragment in outcome[1]


@pytest.mark.parametrize(
    ("field", "error"),
    [
        ("format", CheckpointFormatError),
        ("format_version", CheckpointFormatError),
        ("categoricals", CheckpointFormatError),
        ("classes", CheckpointFormatError),
        ("game", None),
        ("pomdp", None),
        ("training", None),
    ],
)
def test_known_a_removed_metadata_field(
    seeds: Seeds, field: str, error: type[CheckpointError] | None
) -> None:
    """The format, its version and the split are required; the rest defaults to unknown."""
    payload = seeds.payload("native")
    del payload[METADATA_KEY][field]
    outcome, _problem, agent = _known("metadata field removed", seeds.write(payload))
    assert outcome is error
    assert (agent is None) == (error is not None)
    if agent is not None:  # a loaded agent's missing field is the default: unknown
        assert getattr(agent.metadata, field) == getattr(AgentMetadata(), field)


def test_known_a_metadata_split_that_fits_the_shapes_is_used(seeds: Seeds) -> None:
    payload = seeds.payload("native")
    payload[METADATA_KEY].update(categoricals=2, classes=10, comment="an extra field is ignored")
    outcome, _problem, agent = _known("metadata split", seeds.write(payload))
    assert outcome is None
    assert agent is not None
    assert (agent.sizes.categoricals, agent.sizes.classes) == (2, 10)
    assert agent.initial_state(1).logits.shape == (1, 2, 10)


# --- regressions: cases the fuzzer found ------------------------------------------------------


@pytest.fixture
def reference_payload(seeds: Seeds) -> dict[str, Any]:
    return seeds.payload("reference")


def _save(tmp_path: Path, payload: object) -> Path:
    path = tmp_path / "case.pth"
    torch.save(payload, path)
    return path


def test_regression_meta_tensor_is_refused(
    tmp_path: Path, reference_payload: dict[str, Any]
) -> None:
    reference_payload["RSSM"]["rnn.bias_ih"] = torch.empty(48, device="meta")
    with pytest.raises(CheckpointValueError, match=r"RSSM.rnn.bias_ih holds no data \(meta"):
        load_checkpoint(_save(tmp_path, reference_payload), **SPLIT)


def test_regression_nested_tensor_is_refused(
    tmp_path: Path, reference_payload: dict[str, Any]
) -> None:
    """isfinite has no nested-tensor kernel (NotImplementedError)."""
    bias = reference_payload["RSSM"]["rnn.bias_ih"]
    reference_payload["RSSM"]["rnn.bias_ih"] = _quietly(lambda: _exotic("nested", bias))
    with pytest.raises(CheckpointValueError, match="RSSM.rnn.bias_ih is not a dense tensor"):
        load_checkpoint(_save(tmp_path, reference_payload), **SPLIT)


def test_regression_float8_weights_load(tmp_path: Path, reference_payload: dict[str, Any]) -> None:
    """isfinite has no float8 kernel: the check runs on the float32 copy."""
    reference_payload["RSSM"]["rnn.bias_ih"] = reference_payload["RSSM"]["rnn.bias_ih"].to(
        torch.float8_e4m3fn
    )
    _exercise(load_checkpoint(_save(tmp_path, reference_payload), **SPLIT))


def test_regression_unconvertible_floating_dtype(
    tmp_path: Path, reference_payload: dict[str, Any]
) -> None:
    reference_payload["RSSM"]["rnn.bias_ih"] = torch.zeros(48, dtype=torch.float4_e2m1fn_x2)
    with pytest.raises(CheckpointValueError, match="float4_e2m1fn_x2, which cannot be converted"):
        load_checkpoint(_save(tmp_path, reference_payload), **SPLIT)


def test_regression_float64_beyond_float32_range_is_non_finite(
    tmp_path: Path, reference_payload: dict[str, Any]
) -> None:
    reference_payload["RSSM"]["rnn.bias_ih"] = torch.full((48,), 1e300, dtype=torch.float64)
    with pytest.raises(CheckpointValueError, match=r"non-finite weights .* RSSM.rnn.bias_ih"):
        load_checkpoint(_save(tmp_path, reference_payload), **SPLIT)


@pytest.mark.parametrize("size", [10**5, 10**12])
def test_regression_huge_inferred_network_is_refused_before_allocation(
    tmp_path: Path, reference_payload: dict[str, Any], size: int
) -> None:
    """An empty (48, 0)-like tensor declaring deter = size: the GRU would need 12 * size**2
    bytes; the sizes are checked on the meta device first."""
    reference_payload["RSSM"]["rnn.weight_hh"] = torch.zeros(0, size)
    expected = "RSSM.rnn.weight_hh is" if size < 10**9 else "overflowed"
    with pytest.raises(CheckpointShapeError, match=expected):
        load_checkpoint(_save(tmp_path, reference_payload), **SPLIT)


def test_regression_stride_zero_view_with_a_huge_shape_is_refused(
    tmp_path: Path, reference_payload: dict[str, Any]
) -> None:
    """One stored number viewed as 10**10 (the finiteness check would allocate 10 GB)."""
    reference_payload["RSSM"]["rnn.bias_ih"] = torch.zeros(1).expand(10**5, 10**5)
    with pytest.raises(CheckpointValueError, match="RSSM.rnn.bias_ih declares 10000000000"):
        load_checkpoint(_save(tmp_path, reference_payload), **SPLIT)


@pytest.mark.parametrize("holder", ["parameter", "tensor"])
def test_regression_tensor_attribute_shadowing_a_method(
    tmp_path: Path, reference_payload: dict[str, Any], holder: str
) -> None:
    reference_payload["RSSM"]["rnn.bias_ih"] = _ShadowedTensor(
        reference_payload["RSSM"]["rnn.bias_ih"],
        {"is_floating_point": 5, "detach": None, "untyped_storage": "x"},
        parameter=holder == "parameter",
    )
    _exercise(load_checkpoint(_save(tmp_path, reference_payload), **SPLIT))


@pytest.mark.parametrize("where", ["file", "module", "metadata"])
def test_regression_ordered_dict_attribute_shadowing_a_method(
    tmp_path: Path, seeds: Seeds, where: str
) -> None:
    payload: Any = seeds.payload("native")
    attributes = {"items": 5, "keys": 5, "get": 5}
    if where == "file":
        payload = _ShadowedDict(payload, attributes)
    elif where == "module":
        payload["RSSM"] = _ShadowedDict(payload["RSSM"], attributes)
    else:
        payload[METADATA_KEY] = _ShadowedDict(payload[METADATA_KEY], attributes)
    _exercise(load_checkpoint(_save(tmp_path, payload)))


@pytest.mark.parametrize(
    ("field", "value"),
    [("game", ["freeway"]), ("game", {"a": 1}), ("format_version", torch.ones(3))],
)
def test_regression_unhashable_or_tensor_metadata_values(
    tmp_path: Path, seeds: Seeds, field: str, value: object
) -> None:
    payload = seeds.payload("native")
    payload[METADATA_KEY][field] = value
    with pytest.raises(CheckpointFormatError, match="entry (names game|declares format)"):
        load_checkpoint(_save(tmp_path, payload))


def test_regression_parameter_index_with_thousands_of_digits(
    tmp_path: Path, reference_payload: dict[str, Any]
) -> None:
    """int() refuses strings of more than 4300 digits (ValueError)."""
    reference_payload["ActionModel"][f"model.{'8' * 5000}.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointKeyError, match="ActionModel: unexpected"):
        load_checkpoint(_save(tmp_path, reference_payload), **SPLIT)


def test_regression_deeply_nested_key_in_a_message(seeds: Seeds, tmp_path: Path) -> None:
    """repr() of a 3000-deep tuple raises RecursionError; messages use a bounded repr."""
    payload = seeds.payload("native")
    payload[SENTINEL] = {}
    path = tmp_path / "deep.pth"
    path.write_bytes(_inject(payload, _nested_tuple(3000)))
    with pytest.raises(CheckpointKeyError, match=r"non-string top-level keys \(\(\(\("):
        load_checkpoint(path)
