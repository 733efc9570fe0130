"""Start-up checks of a checkpoint against the settings (the plugin runs them before any test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.plugin.preflight import check_checkpoint
from pytest_dreamer_audit.settings import AuditSettings
from pytest_dreamer_audit.testing import write_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("p") / "tiny.pth"))


def test_a_fitting_checkpoint_passes(tiny: str) -> None:
    check_checkpoint(AuditSettings(checkpoint=tiny, rank=3))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rank": 6}, "--dreamer-rank 6 is larger than the 5 columns of the NMF matrix of "),
        ({"game": "breakout"}, "check --dreamer-game and --dreamer-pomdp"),
        ({"pomdp": "false"}, "has 7; pass --dreamer-pomdp true"),
        ({"episodes": 4096, "steps": 100_000}, "over the 8 GiB limit"),
    ],
)
def test_settings_that_cannot_work_are_refused(
    tiny: str, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_checkpoint(AuditSettings(checkpoint=tiny, rank=3).with_overrides(overrides))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_a_device_this_machine_lacks_is_refused(tiny: str) -> None:
    with pytest.raises(ConfigError, match="CUDA"):
        check_checkpoint(AuditSettings(checkpoint=tiny, rank=3, device="cuda:1"))


def test_a_reference_checkpoint_without_a_game_asks_for_one(tmp_path: Path) -> None:
    reference = write_tiny_checkpoint(
        tmp_path / "ref.pth", native=False, categoricals=20, classes=20
    )
    with pytest.raises(ConfigError, match=r"records no game .* pass --dreamer-game freeway"):
        check_checkpoint(AuditSettings(checkpoint=str(reference), rank=3))
