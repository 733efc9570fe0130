"""Load and save DreamerV2 checkpoints: the reference PyTorch MinAtar format and the native one.

A checkpoint is untrusted input. It is read with ``torch.load(..., weights_only=True)`` only, so
no code in it ever runs; then every module, key, shape, dtype and value is checked before a
network sees it. Sizes are inferred from the tensor shapes (no config file is needed); the split
of the stochastic state into categoricals x classes cannot be read from shapes, so it comes from
the native metadata, from the caller, or defaults to the reference 20 x 20.

The native format is the reference dict plus one entry, :data:`METADATA_KEY`, holding plain
values (game, POMDP flag, categoricals, classes, training facts). Reference tools ignore it.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import reprlib
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import (
    PYTHON,
    CheckpointError,
    CheckpointFormatError,
    CheckpointKeyError,
    CheckpointNotFoundError,
    CheckpointShapeError,
    CheckpointValueError,
    ConfigError,
    Spelling,
    UnsafeCheckpointError,
)
from ..files import atomic_write
from ..games import GAMES
from .agent import CHECKPOINT_MODULES, AgentMetadata, DreamerAgent
from .devices import resolve_device
from .networks import ModelSizes, conv_output_side

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "METADATA_KEY", "load_checkpoint", "save_checkpoint"]

METADATA_KEY = "DreamerAuditMetadata"
FORMAT_NAME = "pytest-dreamer-audit"
FORMAT_VERSION = 1
REQUIRED_MODULES = ("RSSM", "ObsEncoder", "ActionModel")
HEAD_MODULES = ("RewardDecoder", "ValueModel", "DiscountModel")
REFERENCE_STOCH = 400
REFERENCE_SPLIT = (20, 20)
_DENSE_KEY = re.compile(r"model\.(\d{1,9})\.(weight|bias)")  # int() refuses > 4300 digits


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    categoricals: int | None = None,
    classes: int | None = None,
    spelling: Spelling = PYTHON,
    content: bytes | None = None,
) -> DreamerAgent:
    """Load a reference or native DreamerV2 MinAtar checkpoint into a :class:`DreamerAgent`.

    Args:
        path: the ``.pth`` file.
        device: where the weights go (``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``).
        categoricals, classes: split of the stochastic state; needed only for a reference file
            whose stochastic size is not the reference 400 (= 20 x 20), and checked against the
            metadata of a native file.
        spelling: how messages name ``categoricals`` and ``classes`` (the command line passes
            its options' spelling).
        content: the file's bytes, already read (and hashed) by the caller, who then gets the
            agent of exactly those bytes; ``path`` only names the file in messages. Without it
            the file is read once here.

    Returns:
        The agent in eval mode on ``device``, with ``agent.metadata`` from the native entry.

    Raises:
        CheckpointError: a subclass naming the file and what is wrong with it.
    """
    target = resolve_device(device)
    raw = _read(Path(path), content)
    metadata, split = _parse_metadata(path, raw.pop(METADATA_KEY, None))
    modules = _check_modules(path, raw)
    sizes = _infer_sizes(
        path, modules, _choose_split(path, modules, split, categoricals, classes, spelling)
    )
    _check_shapes_before_allocating(path, sizes, modules)
    agent = DreamerAgent(sizes, heads=frozenset(modules), metadata=metadata)
    for key, module in agent.present_modules().items():
        module.load_state_dict(modules[key], strict=True)
    return agent.to(target).eval()


def save_checkpoint(
    agent: DreamerAgent,
    path: str | os.PathLike[str],
    *,
    metadata: AgentMetadata | None = None,
    native: bool = True,
) -> Path:
    """Write ``agent`` to ``path`` atomically (a temporary file, then a rename).

    ``native=False`` writes the plain reference format (no metadata entry), which the reference
    implementation and this package both read. ``metadata`` defaults to ``agent.metadata``.
    """
    destination = Path(path)
    payload: dict[str, Any] = {
        key: {name: tensor.detach().cpu() for name, tensor in module.state_dict().items()}
        for key, module in agent.present_modules().items()
    }
    if native:
        payload[METADATA_KEY] = _metadata_entry(agent.sizes, metadata or agent.metadata)
    atomic_write(destination, lambda stream: torch.save(payload, stream))
    return destination


def _read(path: Path, content: bytes | None) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of the file's bytes (read once), with every failure
    turned into a CheckpointError."""
    if content is None:
        if not path.exists():
            raise CheckpointNotFoundError(
                path, f"no such file; check the path (relative paths start at {Path.cwd()})"
            )
        if not path.is_file():
            raise CheckpointNotFoundError(path, "not a regular file; pass the .pth file itself")
        try:
            content = path.read_bytes()
        except OSError as error:
            raise CheckpointNotFoundError(
                path, f"cannot be read ({error.strerror or error}); make it readable"
            ) from None
    _check_torch_file(path, content)
    _check_declared_sizes(path, content)
    try:
        with warnings.catch_warnings():
            # torch warns about foreign pickle protocols; the outcome is decided below either way,
            # and a user's ``-W error`` must not turn that warning into a misleading failure.
            warnings.simplefilter("ignore")
            loaded = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _unpickler_detail(str(error))
        if "global" in detail.lower():
            raise _unsafe(path, detail) from None
        raise CheckpointFormatError(
            path, f"not a torch checkpoint the weights-only unpickler can read ({detail})"
        ) from None
    except Exception as error:  # torch.load raises many types for a damaged or foreign file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointFormatError(
            path, f"not a readable torch checkpoint ({type(error).__name__}: {reason})"
        ) from None
    if not isinstance(loaded, Mapping):
        raise CheckpointFormatError(
            path,
            f"holds a {type(loaded).__name__}, not the dict of state_dicts a DreamerV2 "
            f"checkpoint is (keys {', '.join(CHECKPOINT_MODULES)})",
        )
    return dict(_items(loaded))


_TORCH_STARTS = (b"PK", b"\x80")
"""How a file torch.save wrote starts: a zip archive (the format since torch 1.6), or a pickle
of protocol 2 or later (the legacy format, ``_use_new_zipfile_serialization=False``)."""


def _check_torch_file(path: Path, content: bytes) -> None:
    """Refuse a file that is no torch file at all (empty, text, other bytes) with what it is,
    before torch's unpickler reads its first byte as an opcode (``KeyError: 101``)."""
    if content.startswith(_TORCH_STARTS):
        return
    if not content:
        what = "it is empty (0 bytes)"
    else:
        head = content[:24]
        text = ""
        for cut in range(4):  # the 24 bytes may end inside a character
            try:
                text = head[: len(head) - cut].decode("utf-8")
                break
            except UnicodeDecodeError:
                continue
        if text and all(char.isprintable() or char in "\t\r\n" for char in text):
            what = f"it is a text file, not a torch file (it starts with {text!r})"
        else:
            what = f"it is not a torch file (its first bytes are {head[:8].hex(' ')})"
    raise CheckpointFormatError(
        path,
        f"not a torch checkpoint: {what}; torch.save writes a zip archive (starting with 'PK'). "
        "Pass the .pth file that torch.save wrote",
    )


def _check_declared_sizes(path: Path, content: bytes) -> None:
    """Refuse a zip whose members declare more bytes than the file holds, before anything is
    unpacked: ``torch.save`` stores its members uncompressed, so a checkpoint never expands, and
    a small file declaring a large tensor (a compressed member) would otherwise be unpacked into
    memory before its shape is refused."""
    if not content.startswith(b"PK"):
        return  # the legacy (non-zip) format: torch reads it as it goes
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            declared = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a readable zip: torch.load says what is wrong with it
    if declared > len(content):
        raise CheckpointFormatError(
            path,
            f"its zip archive declares {declared:,} bytes of data in a {len(content):,}-byte "
            "file (compressed members), which torch.save never writes; it was not unpacked. "
            "Re-save the state_dicts with torch.save",
        )


def _items(mapping: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """``mapping.items()`` without calling the instance's methods: torch's weights-only
    unpickler restores an OrderedDict's instance attributes, which can shadow ``items``."""
    return list(dict.items(mapping) if isinstance(mapping, dict) else mapping.items())


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


def _show(value: object) -> str:
    """A bounded repr for messages (a value nested thousands deep has no plain repr)."""
    try:
        return _SHORT.repr(value)
    except Exception:  # a repr that fails is the file's problem, not the message's
        return f"<{type(value).__name__}>"


def _unpickler_detail(message: str) -> str:
    """The specific line of torch's long weights-only message (the refused global or opcode)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    specific = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (specific or lines or ["unreadable pickle"])[0]


def _unsafe(path: Path, detail: str) -> CheckpointError:
    return UnsafeCheckpointError(
        path,
        "its pickle references objects that torch.load(weights_only=True) refuses to build, so "
        "it was not loaded and nothing in it ran. A DreamerV2 checkpoint holds only tensors; "
        f"re-save the state_dicts alone. torch said: {detail}",
    )


def _check_modules(
    path: str | os.PathLike[str], raw: dict[str, Any]
) -> dict[str, dict[str, Tensor]]:
    """Top-level keys, then each state_dict's entries: names, types, dtypes, finiteness."""
    names = [key for key in raw if isinstance(key, str)]
    if len(names) != len(raw):
        odd = [_show(key) for key in raw if not isinstance(key, str)]
        raise CheckpointKeyError(path, f"has non-string top-level keys {', '.join(odd)}")
    unexpected = sorted(set(names) - set(CHECKPOINT_MODULES))
    missing = [key for key in REQUIRED_MODULES if key not in raw]
    if unexpected or missing:
        parts = []
        if missing:
            parts.append(f"missing modules {missing}")
        if unexpected:
            parts.append(f"unexpected modules {unexpected}")
        raise CheckpointKeyError(
            path,
            f"{' and '.join(parts)}; a DreamerV2 checkpoint has {list(CHECKPOINT_MODULES)} "
            f"(the first three are required) and optionally {METADATA_KEY!r}",
        )
    modules: dict[str, dict[str, Tensor]] = {}
    bad_values: list[str] = []
    for key in names:
        state = raw[key]
        if not isinstance(state, Mapping):
            raise CheckpointFormatError(
                path, f"{key} holds a {type(state).__name__}, expected a state_dict of tensors"
            )
        tensors: dict[str, Tensor] = {}
        for name, value in _items(state):
            if not isinstance(name, str) or not isinstance(value, Tensor):
                raise CheckpointFormatError(
                    path,
                    f"{key}[{_show(name)}] is a {type(value).__name__}; a state_dict maps "
                    "parameter names to tensors",
                )
            tensor = _plain_tensor(path, f"{key}.{name}", value)
            if not bool(torch.isfinite(tensor).all()):
                bad_values.append(f"{key}.{name}")
            tensors[name] = tensor
        modules[key] = tensors
    if bad_values:
        shown = ", ".join(bad_values[:8]) + (" ..." if len(bad_values) > 8 else "")
        raise CheckpointValueError(
            path,
            f"non-finite weights (NaN or infinity) in {len(bad_values)} tensor(s): {shown}; the "
            "training run diverged or the file is damaged: use an earlier checkpoint",
        )
    return modules


def _plain_tensor(path: str | os.PathLike[str], where: str, value: Tensor) -> Tensor:
    """``value`` as a dense float32 CPU tensor, or a CheckpointValueError.

    Torch's own methods are called unbound (``Tensor.detach(value)``): an unpickled tensor can
    carry instance attributes that shadow them. A view whose shape declares more elements than
    its storage holds (stride 0) is refused before anything materializes it.
    """
    tensor = Tensor.detach(value)  # a fresh plain Tensor: no Parameter, no instance attributes
    if not tensor.is_floating_point():
        raise CheckpointValueError(
            path, f"{where} has dtype {tensor.dtype}; weights must be floating point"
        )
    if tensor.is_sparse or tensor.layout != torch.strided or tensor.is_nested:
        raise CheckpointValueError(path, f"{where} is not a dense tensor")
    if tensor.device.type != "cpu":
        raise CheckpointValueError(
            path, f"{where} holds no data ({tensor.device.type} tensor); save the real weights"
        )
    stored = tensor.untyped_storage().nbytes() // tensor.element_size()
    if tensor.numel() > stored:
        raise CheckpointValueError(
            path,
            f"{where} declares {tensor.numel()} elements (shape {tuple(tensor.shape)}) but stores "
            f"{stored}: a broadcast view, not weights; save tensor.contiguous()",
        )
    try:
        return tensor.to(torch.float32)
    except Exception:  # torch has no conversion for some dtypes (float4, bit-packed ones)
        raise CheckpointValueError(
            path, f"{where} has dtype {tensor.dtype}, which cannot be converted to float32"
        ) from None


def _shape(
    path: str | os.PathLike[str],
    modules: Mapping[str, Mapping[str, Tensor]],
    key: str,
    name: str,
    ndim: int,
) -> tuple[int, ...]:
    tensor = modules[key].get(name)
    if tensor is None:
        raise CheckpointKeyError(path, f"{key} is missing parameter {name!r}")
    if tensor.dim() != ndim:
        raise CheckpointShapeError(
            path, f"{key}.{name} has shape {tuple(tensor.shape)}; expected {ndim} dimensions"
        )
    return tuple(tensor.shape)


def _dense_layout(
    path: str | os.PathLike[str], key: str, state: Mapping[str, Tensor]
) -> tuple[int, int]:
    """(hidden width, hidden layers) of an MLP stored as ``model.{0,2,4,...}``."""
    indices = sorted({int(m.group(1)) for name in state if (m := _DENSE_KEY.fullmatch(name))})
    if not indices or indices != list(range(0, 2 * len(indices), 2)):
        raise CheckpointKeyError(
            path,
            f"{key} has parameters {sorted(state)}; expected model.0, model.2, ... (Linear layers "
            "separated by ELU)",
        )
    if len(indices) < 2:
        raise CheckpointShapeError(path, f"{key} has a single layer; expected hidden layers")
    hidden = _shape(path, {key: state}, key, "model.0.weight", 2)[0]
    return hidden, len(indices) - 1


def _choose_split(
    path: str | os.PathLike[str],
    modules: Mapping[str, Mapping[str, Tensor]],
    stored: tuple[int, int] | None,
    categoricals: int | None,
    classes: int | None,
    spelling: Spelling,
) -> tuple[int, int]:
    stoch = _shape(path, modules, "RSSM", "fc_prior.2.weight", 2)[0]
    if (categoricals is None) != (classes is None):
        raise ConfigError(
            f"give both {spelling.name('categoricals')} and {spelling.name('classes')}, or neither"
        )
    asked = (categoricals, classes) if categoricals is not None and classes is not None else None
    if stored is not None and asked is not None and stored != asked:
        raise CheckpointShapeError(
            path,
            f"its metadata says {stored[0]} categoricals x {stored[1]} classes, but "
            f"{asked[0]} x {asked[1]} was asked for; drop the override",
        )
    split = stored or asked
    if split is None:
        if stoch != REFERENCE_STOCH:
            raise CheckpointShapeError(
                path,
                f"its stochastic state has {stoch} units, and shapes alone cannot tell how they "
                "split into categoricals x classes; pass "
                f"{spelling.name('categoricals')} and {spelling.name('classes')}",
            )
        split = REFERENCE_SPLIT
    if split[0] * split[1] != stoch:
        raise CheckpointShapeError(
            path,
            f"{split[0]} categoricals x {split[1]} classes = {split[0] * split[1]}, but the "
            f"stochastic state (RSSM.fc_prior.2.weight) has {stoch} units",
        )
    return split


def _infer_sizes(
    path: str | os.PathLike[str],
    modules: Mapping[str, Mapping[str, Tensor]],
    split: tuple[int, int],
) -> ModelSizes:
    """Every size from the tensor shapes; contradictions are caught later by _check_against."""
    depth, channels, kernel, kernel_w = _shape(
        path, modules, "ObsEncoder", "convolutions.0.weight", 4
    )
    if kernel != kernel_w or conv_output_side(kernel) < 1:
        raise CheckpointShapeError(
            path,
            f"ObsEncoder.convolutions.0.weight has a {kernel}x{kernel_w} kernel; expected a square "
            "kernel that leaves pixels after three valid convolutions of a 10x10 observation",
        )
    conv_features = 4 * depth * conv_output_side(kernel) ** 2
    embedding = (
        _shape(path, modules, "ObsEncoder", "fc_1.weight", 2)[0]
        if "fc_1.weight" in modules["ObsEncoder"]
        else conv_features
    )
    deter = _shape(path, modules, "RSSM", "rnn.weight_hh", 2)[1]
    node = _shape(path, modules, "RSSM", "fc_prior.0.weight", 2)[0]
    stoch = split[0] * split[1]
    actions = _shape(path, modules, "RSSM", "fc_embed_state_action.0.weight", 2)[1] - stoch
    if actions < 1:
        raise CheckpointShapeError(
            path,
            f"RSSM.fc_embed_state_action.0.weight takes {actions + stoch} inputs, fewer than the "
            f"{stoch} units of the stochastic state plus at least one action",
        )
    actor_hidden, actor_layers = _dense_layout(path, "ActionModel", modules["ActionModel"])
    head_layouts = {
        key: _dense_layout(path, key, modules[key]) for key in HEAD_MODULES if key in modules
    }
    if len(set(head_layouts.values())) > 1:
        raise CheckpointShapeError(
            path, f"the heads disagree on (width, layers): {head_layouts}; they must share one"
        )
    head_hidden, head_layers = next(iter(head_layouts.values()), (100, 3))
    try:
        return ModelSizes(
            channels=channels,
            actions=actions,
            deter=deter,
            categoricals=split[0],
            classes=split[1],
            embedding=embedding,
            node=node,
            depth=depth,
            kernel=kernel,
            actor_hidden=actor_hidden,
            actor_layers=actor_layers,
            head_hidden=head_hidden,
            head_layers=head_layers,
        )
    except ConfigError as error:
        raise CheckpointShapeError(path, f"inferred sizes are not usable: {error}") from None


def _check_shapes_before_allocating(
    path: str | os.PathLike[str], sizes: ModelSizes, modules: Mapping[str, Mapping[str, Tensor]]
) -> None:
    """Compare every state_dict with an agent of ``sizes`` built on the meta device (shapes, no
    memory): a tiny file declaring a huge size must fail here, not in the allocator."""
    try:
        with torch.device("meta"):
            skeleton = DreamerAgent(sizes, heads=frozenset(modules))
    except (RuntimeError, TypeError, ValueError, OverflowError) as error:
        # torch refuses sizes whose element or byte count overflows int64
        raise CheckpointShapeError(
            path, f"inferred sizes are not usable: {str(error).strip().splitlines()[0]}"
        ) from None
    for key, module in skeleton.present_modules().items():
        _check_against(path, key, module.state_dict(), modules[key])


def _check_against(
    path: str | os.PathLike[str],
    key: str,
    expected: Mapping[str, Tensor],
    actual: Mapping[str, Tensor],
) -> None:
    """Compare a state_dict with what the inferred sizes require; list every difference."""
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {missing}"] if missing else []) + (
            [f"unexpected {unexpected}"] if unexpected else []
        )
        raise CheckpointKeyError(path, f"{key}: {' and '.join(parts)} parameters")
    wrong = [
        f"{key}.{name} is {tuple(actual[name].shape)}, expected {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if actual[name].shape != tensor.shape
    ]
    if wrong:
        raise CheckpointShapeError(
            path,
            "shapes contradict the sizes inferred from the other tensors: " + "; ".join(wrong),
        )


def _metadata_entry(sizes: ModelSizes, metadata: AgentMetadata) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "game": metadata.game,
        "pomdp": metadata.pomdp,
        "categoricals": sizes.categoricals,
        "classes": sizes.classes,
        "training": dict(metadata.training),
    }


def _parse_metadata(
    path: str | os.PathLike[str], entry: object
) -> tuple[AgentMetadata, tuple[int, int] | None]:
    if entry is None:
        return AgentMetadata(), None

    def bad(problem: str) -> CheckpointFormatError:
        return CheckpointFormatError(path, f"its {METADATA_KEY} entry {problem}")

    if not isinstance(entry, Mapping):
        raise bad(f"is a {type(entry).__name__}, expected a dict")
    entry = dict(_items(entry))
    name, version = entry.get("format"), entry.get("format_version")
    if not (_is_scalar(name) and name == FORMAT_NAME) or not (
        _is_scalar(version) and version == FORMAT_VERSION
    ):
        raise bad(
            f"declares format {_show(name)} version {_show(version)}; "
            f"this version reads {FORMAT_NAME!r} version {FORMAT_VERSION}"
        )
    game, pomdp, training = entry.get("game"), entry.get("pomdp"), entry.get("training", {})
    if game is not None and not (isinstance(game, str) and game in GAMES):
        raise bad(f"names game {_show(game)}, not one of {sorted(GAMES)}")
    if pomdp is not None and not isinstance(pomdp, bool):
        raise bad(f"has pomdp={_show(pomdp)}, expected true, false or none")
    if not isinstance(training, Mapping) or not all(isinstance(k, str) for k in training):
        raise bad("has a 'training' value that is not a dict with string keys")
    categoricals, classes = entry.get("categoricals"), entry.get("classes")
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (categoricals, classes)
    ):
        raise bad(
            f"has categoricals={_show(categoricals)}, classes={_show(classes)}; expected "
            "positive integers"
        )
    metadata = AgentMetadata(game=game, pomdp=pomdp, training=dict(_items(training)))
    return metadata, (int(categoricals), int(classes))  # type: ignore[arg-type]


def _is_scalar(value: object) -> bool:
    """Whether ``value == x`` is a plain bool (a tensor compares element-wise)."""
    return isinstance(value, str | int | float)
