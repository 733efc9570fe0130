"""Device resolution (``model/devices.py``): what each setting becomes, and the typed errors.

CUDA's presence is faked with ``monkeypatch`` where an outcome depends on it, so every branch
runs on a CPU-only machine; the one test that needs a real GPU is marked ``gpu``.
"""

from __future__ import annotations

import re

import pytest
import torch

from pytest_dreamer_audit.errors import ConfigError, DreamerAuditError
from pytest_dreamer_audit.model.devices import resolve_device

HOW_TO_FIX = "use 'auto', 'cpu' or 'cuda[:N]'"


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def _refused(device: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve_device(device)  # type: ignore[arg-type]
    error = caught.value
    assert type(error) is ConfigError
    assert isinstance(error, DreamerAuditError)
    assert isinstance(error, ValueError)
    assert error.__cause__ is None  # ``from None``: the message says it all
    return error


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("cpu", torch.device("cpu")),
        ("cpu:0", torch.device("cpu", 0)),
        (torch.device("cpu"), torch.device("cpu")),
    ],
)
def test_cpu_settings_resolve_to_that_cpu_device(
    setting: str | torch.device, expected: torch.device
) -> None:
    resolved = resolve_device(setting)
    assert resolved == expected
    assert isinstance(resolved, torch.device)


@pytest.mark.parametrize("setting", ["auto", None])
def test_auto_falls_back_to_the_cpu_without_cuda(no_cuda: None, setting: str | None) -> None:
    assert resolve_device(setting) == torch.device("cpu")


@pytest.mark.parametrize("setting", ["auto", None])
def test_auto_picks_cuda_when_present(two_gpus: None, setting: str | None) -> None:
    assert resolve_device(setting) == torch.device("cuda")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("cuda", torch.device("cuda")), ("cuda:1", torch.device("cuda", 1))],
)
def test_cuda_settings_within_the_visible_devices_resolve(
    two_gpus: None, setting: str, expected: torch.device
) -> None:
    assert resolve_device(setting) == expected


@pytest.mark.parametrize("setting", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_cuda_without_cuda_says_so_and_offers_the_cpu(
    no_cuda: None, setting: str | torch.device
) -> None:
    error = _refused(setting)
    assert str(error) == (
        f"device {setting!r} asks for CUDA, but torch {torch.__version__} sees no CUDA GPU; "
        "use 'cpu' or 'auto' (which falls back to the CPU)"
    )


@pytest.mark.parametrize("setting", ["cuda:2", "cuda:7"])
def test_cuda_index_beyond_the_visible_devices_gives_the_count(
    two_gpus: None, setting: str
) -> None:
    error = _refused(setting)
    assert str(error) == (
        f"device {setting!r} does not exist: 2 CUDA device(s) are visible; pick an index below that"
    )


@pytest.mark.parametrize(
    ("setting", "torch_says"),
    [
        ("gpu0", "Invalid device string: 'gpu0'"),
        ("cuda:x", "Invalid device string: 'cuda:x'"),
        ("cuda:-1", "Invalid device string: 'cuda:-1'"),
        ("auto ", "Invalid device string: 'auto '"),
        ("", None),
        ("CPU", None),  # device types are lower case
    ],
)
def test_strings_torch_cannot_parse_are_config_errors_with_torchs_reason(
    setting: str, torch_says: str | None
) -> None:
    """The reason in parentheses is torch's own (its wording may change across versions)."""
    error = _refused(setting)
    message = str(error)
    assert message.startswith(f"device {setting!r} is not a torch device (")
    assert torch_says is None or torch_says in message
    assert message.endswith(f"); {HOW_TO_FIX}")


def test_a_value_of_the_wrong_type_is_a_config_error() -> None:
    error = _refused(1.5)
    assert re.match(r"device 1\.5 is not a torch device \(", str(error))
    assert str(error).endswith(HOW_TO_FIX)


@pytest.mark.parametrize("setting", ["meta", "mps", "xla", torch.device("meta")])
def test_devices_torch_knows_but_the_audit_cannot_use_are_refused(
    setting: str | torch.device,
) -> None:
    error = _refused(setting)
    assert str(error) == f"device {setting!r} is not supported; {HOW_TO_FIX}"


@pytest.mark.gpu
def test_real_cuda_resolves_on_a_gpu_machine() -> None:
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("auto").type == "cuda"
    assert resolve_device(f"cuda:{torch.cuda.device_count() - 1}").type == "cuda"
    count = torch.cuda.device_count()
    with pytest.raises(ConfigError, match=f"{count} CUDA device"):
        resolve_device(f"cuda:{count}")
