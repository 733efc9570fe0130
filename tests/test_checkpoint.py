from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from pytest_dreamer_audit.errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointKeyError,
    CheckpointNotFoundError,
    CheckpointShapeError,
    CheckpointValueError,
    ConfigError,
    DreamerAuditError,
    UnsafeCheckpointError,
)
from pytest_dreamer_audit.model.agent import AgentMetadata, build_agent
from pytest_dreamer_audit.model.checkpoint import METADATA_KEY, load_checkpoint, save_checkpoint
from pytest_dreamer_audit.model.networks import ModelSizes
from pytest_dreamer_audit.testing import tiny_agent, write_tiny_checkpoint


def _raw(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def _rewrite(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


@pytest.fixture
def reference_file(tmp_path: Path) -> Path:
    """A tiny agent in the plain reference format (no metadata)."""
    return write_tiny_checkpoint(tmp_path / "ref.pth", native=False, seed=7)


def test_reference_file_with_default_sizes_loads_and_infers_every_size(tmp_path: Path) -> None:
    sizes = ModelSizes(channels=7, actions=3)
    agent = build_agent(sizes, seed=0)
    path = save_checkpoint(agent, tmp_path / "models_best.pth", native=False)
    assert set(_raw(path)) == {
        "RSSM",
        "ObsEncoder",
        "ObsDecoder",
        "RewardDecoder",
        "ActionModel",
        "ValueModel",
        "DiscountModel",
    }
    loaded = load_checkpoint(path)
    assert loaded.sizes == sizes
    assert loaded.metadata == AgentMetadata()
    for key, module in agent.present_modules().items():
        for name, tensor in module.state_dict().items():
            assert torch.equal(loaded.present_modules()[key].state_dict()[name], tensor), name


def test_reference_file_needs_a_split_when_stoch_is_not_400(reference_file: Path) -> None:
    with pytest.raises(CheckpointShapeError, match="20 units.*pass categoricals= and classes="):
        load_checkpoint(reference_file)
    agent = load_checkpoint(reference_file, categoricals=4, classes=5)
    assert (agent.sizes.categoricals, agent.sizes.classes) == (4, 5)
    other = load_checkpoint(reference_file, categoricals=2, classes=10)
    assert other.initial_state(1).logits.shape == (1, 2, 10)
    with pytest.raises(CheckpointShapeError, match="3 categoricals x 5 classes = 15"):
        load_checkpoint(reference_file, categoricals=3, classes=5)
    with pytest.raises(ConfigError, match="give both"):
        load_checkpoint(reference_file, categoricals=4)


def test_native_round_trip_is_exact(tmp_path: Path) -> None:
    agent = tiny_agent("breakout", pomdp=False, seed=11)
    training = {"env_steps": 1000, "wall_time_s": 12.5, "machine": "cpu", "args": {"lr": 2e-4}}
    first = save_checkpoint(
        agent, tmp_path / "a.pth", metadata=AgentMetadata("breakout", False, training)
    )
    loaded = load_checkpoint(first)
    assert loaded.sizes == agent.sizes
    assert loaded.metadata == AgentMetadata("breakout", False, training)
    second = save_checkpoint(loaded, tmp_path / "b.pth")
    a, b = _raw(first), _raw(second)
    assert a[METADATA_KEY] == b[METADATA_KEY]
    assert a.keys() == b.keys()
    for key in a.keys() - {METADATA_KEY}:
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][n], b[key][n]) for n in a[key])


def test_native_metadata_conflicting_with_override_is_refused(tmp_path: Path) -> None:
    path = write_tiny_checkpoint(tmp_path / "n.pth")
    with pytest.raises(CheckpointShapeError, match="metadata says 4 categoricals x 5 classes"):
        load_checkpoint(path, categoricals=2, classes=10)


def test_optional_heads_may_be_absent(tmp_path: Path, reference_file: Path) -> None:
    raw = _raw(reference_file)
    for key in ("ObsDecoder", "RewardDecoder", "ValueModel", "DiscountModel"):
        del raw[key]
    agent = load_checkpoint(_rewrite(tmp_path / "slim.pth", raw), categoricals=4, classes=5)
    assert set(agent.present_modules()) == {"RSSM", "ObsEncoder", "ActionModel"}
    assert agent.obs_decoder is None


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    save_checkpoint(tiny_agent(), tmp_path / "deep" / "x.pth")
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["x.pth"]


# --- bad files -------------------------------------------------------------------------------


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"nope\.pth: no such file"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointNotFoundError, match="not a regular file"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, I am a text file\n", bytes(range(256)) * 8],
    ids=["empty", "text", "binary-noise"],
)
def test_files_that_are_not_torch_checkpoints(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointFormatError, match=r"bad\.pth: not a .*torch checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "it is empty (0 bytes)"),
        (
            b"hello, I am a text file\n",
            "it is a text file, not a torch file (it starts with 'hello",
        ),
        (("a" + "\u00e9" * 20).encode(), "it is a text file"),
        (bytes(range(256)) * 8, "it is not a torch file (its first bytes are 00 01 02"),
    ],
    ids=["empty", "text", "text-cut-inside-a-character", "binary-noise"],
)
def test_a_file_that_is_not_a_torch_file_is_named_so(
    tmp_path: Path, content: bytes, said: str
) -> None:
    # torch's unpickler would read the text's "h" as an opcode and fail with "KeyError: 101".
    path = tmp_path / "notes.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointFormatError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not a torch checkpoint: {said}")
    assert "KeyError" not in message
    assert "torch.save writes a zip archive" in message


def test_truncated_checkpoint(tmp_path: Path, reference_file: Path) -> None:
    data = reference_file.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="not a readable torch checkpoint"):
        load_checkpoint(path)


class _Payload:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle-protocol-2"])
def test_pickle_that_would_run_a_command_is_refused_and_never_runs(
    tmp_path: Path, reference_file: Path, container: str
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = _raw(reference_file)
    payload["RSSM"] = _Payload(marker)
    if container == "torch-zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="nothing in it ran.*GLOBAL posix.system"):
        load_checkpoint(path)
    assert not marker.exists()
    # The same payload really does run when unpickled without weights_only: the test is real.
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


def test_protocol_4_pickle_with_a_payload_is_refused_before_reaching_it(
    tmp_path: Path, reference_file: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = _raw(reference_file)
    payload["RSSM"] = _Payload(marker)
    path = tmp_path / "evil4.pth"
    path.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(CheckpointFormatError, match="weights-only unpickler can read"):
        load_checkpoint(path)
    assert not marker.exists()


def test_not_a_dict(tmp_path: Path) -> None:
    path = _rewrite(tmp_path / "list.pth", [torch.zeros(3)])
    with pytest.raises(CheckpointFormatError, match="holds a list, not the dict of state_dicts"):
        load_checkpoint(path)


def test_missing_and_unexpected_modules_are_listed(tmp_path: Path, reference_file: Path) -> None:
    raw = _raw(reference_file)
    raw["Critic"] = raw.pop("ActionModel")
    del raw["RSSM"]
    with pytest.raises(
        CheckpointKeyError,
        match=r"missing modules \['RSSM', 'ActionModel'\] and unexpected modules \['Critic'\]",
    ):
        load_checkpoint(_rewrite(tmp_path / "keys.pth", raw))


def test_missing_and_unexpected_parameters_are_listed(tmp_path: Path, reference_file: Path) -> None:
    raw = _raw(reference_file)
    raw["RSSM"]["rnn.extra"] = raw["RSSM"]["rnn.bias_hh"].clone()
    del raw["RSSM"]["rnn.bias_ih"]
    with pytest.raises(
        CheckpointKeyError, match=r"RSSM: missing \['rnn.bias_ih'\] and unexpected \['rnn.extra'\]"
    ):
        load_checkpoint(_rewrite(tmp_path / "params.pth", raw), categoricals=4, classes=5)


def test_contradicting_shapes_name_the_tensor(tmp_path: Path, reference_file: Path) -> None:
    raw = _raw(reference_file)
    raw["ActionModel"]["model.4.weight"] = torch.zeros(5, 12)  # the actor says 5 actions
    raw["ActionModel"]["model.4.bias"] = torch.zeros(5)
    with pytest.raises(
        CheckpointShapeError, match=r"ActionModel.model.4.weight is \(5, 12\), expected \(3, 12\)"
    ):
        load_checkpoint(_rewrite(tmp_path / "shape.pth", raw), categoricals=4, classes=5)


def test_wrong_dimension_count(tmp_path: Path, reference_file: Path) -> None:
    raw = _raw(reference_file)
    raw["ObsEncoder"]["convolutions.0.weight"] = torch.zeros(4, 2, 3)
    with pytest.raises(
        CheckpointShapeError, match="convolutions.0.weight has shape .*4 dimensions"
    ):
        load_checkpoint(_rewrite(tmp_path / "dims.pth", raw), categoricals=4, classes=5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(tmp_path: Path, reference_file: Path, bad: float) -> None:
    raw = _raw(reference_file)
    raw["RSSM"]["fc_prior.0.weight"][0, 0] = bad
    with pytest.raises(CheckpointValueError, match=r"non-finite weights .* RSSM.fc_prior.0.weight"):
        load_checkpoint(_rewrite(tmp_path / "nan.pth", raw), categoricals=4, classes=5)


def test_integer_weights_and_non_tensor_values(tmp_path: Path, reference_file: Path) -> None:
    raw = _raw(reference_file)
    raw["RSSM"]["rnn.bias_ih"] = raw["RSSM"]["rnn.bias_ih"].to(torch.int64)
    with pytest.raises(CheckpointValueError, match="rnn.bias_ih has dtype torch.int64"):
        load_checkpoint(_rewrite(tmp_path / "int.pth", raw), categoricals=4, classes=5)
    raw = _raw(reference_file)
    raw["RSSM"]["rnn.bias_ih"] = {"nested": [1, 2, 3]}
    with pytest.raises(CheckpointFormatError, match=r"RSSM\['rnn.bias_ih'\] is a dict"):
        load_checkpoint(_rewrite(tmp_path / "nested.pth", raw), categoricals=4, classes=5)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("v1", "is a str, expected a dict"),
        ({"format": "other", "format_version": 1}, "declares format 'other'"),
        (
            {
                "format": "pytest-dreamer-audit",
                "format_version": 1,
                "game": "pong",
                "categoricals": 4,
                "classes": 5,
            },
            "names game 'pong'",
        ),
        (
            {
                "format": "pytest-dreamer-audit",
                "format_version": 1,
                "pomdp": "yes",
                "categoricals": 4,
                "classes": 5,
            },
            "pomdp='yes'",
        ),
        (
            {
                "format": "pytest-dreamer-audit",
                "format_version": 1,
                "categoricals": -4,
                "classes": 5,
            },
            "categoricals=-4",
        ),
    ],
)
def test_bad_native_metadata(
    tmp_path: Path, reference_file: Path, entry: object, message: str
) -> None:
    raw = _raw(reference_file)
    raw[METADATA_KEY] = entry
    with pytest.raises(CheckpointFormatError, match=message):
        load_checkpoint(_rewrite(tmp_path / "meta.pth", raw))


def test_every_checkpoint_error_is_a_package_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "some-agent.pth"
    path.write_text("nope")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert isinstance(caught.value, DreamerAuditError)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(str(path))


def test_cuda_device_without_cuda_is_a_config_error(reference_file: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="sees no CUDA GPU; use 'cpu' or 'auto'"):
        load_checkpoint(reference_file, device="cuda", categoricals=4, classes=5)
    with pytest.raises(ConfigError, match="not a torch device"):
        load_checkpoint(reference_file, device="gpu0", categoricals=4, classes=5)
    agent = load_checkpoint(reference_file, device="auto", categoricals=4, classes=5)
    assert agent.device == torch.device("cpu")


@pytest.mark.gpu
def test_load_onto_cuda(reference_file: Path) -> None:
    agent = load_checkpoint(reference_file, device="cuda", categoricals=4, classes=5)
    assert agent.device.type == "cuda"


def test_a_small_zip_declaring_a_large_member_is_refused_before_unpacking(
    tmp_path: Path,
) -> None:
    import tracemalloc
    import zipfile

    from pytest_dreamer_audit.errors import CheckpointFormatError

    path = write_tiny_checkpoint(tmp_path / "bomb.pth", seed=1)
    with zipfile.ZipFile(path, "a") as archive:
        prefix = archive.namelist()[0].split("/")[0]
        info = zipfile.ZipInfo(f"{prefix}/data/999")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as member:
            block = bytes(1 << 20)
            for _ in range(64):  # 64 MiB of zeros in about 64 KiB
                member.write(block)
    assert path.stat().st_size < 8 << 20
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointFormatError, match="declares .* bytes of data in a .*Re-save"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * path.stat().st_size + (4 << 20)  # the file's bytes, never the 64 MiB
