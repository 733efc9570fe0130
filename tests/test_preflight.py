"""Start-up checks of a checkpoint against the settings (the plugin runs them before any test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pytest_dreamer_audit.errors import CacheEntryWarning, ConfigError
from pytest_dreamer_audit.plugin.preflight import check_checkpoint
from pytest_dreamer_audit.settings import AuditSettings
from pytest_dreamer_audit.testing import write_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("p") / "tiny.pth"))


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_a_fitting_checkpoint_passes(tiny: str, cache: Path) -> None:
    check_checkpoint(AuditSettings(checkpoint=tiny, rank=3), cache)


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
    tiny: str, cache: Path, overrides: dict[str, object], message: str
) -> None:
    settings = AuditSettings(checkpoint=tiny, rank=3).with_overrides(overrides)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_checkpoint(settings, cache)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_checkpoint(settings, cache)  # from the cached facts: the same refusal


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_a_device_this_machine_lacks_is_refused(tiny: str, cache: Path) -> None:
    with pytest.raises(ConfigError, match="CUDA"):
        check_checkpoint(AuditSettings(checkpoint=tiny, rank=3, device="cuda:1"), cache)


def test_a_reference_checkpoint_without_a_game_asks_for_one(tmp_path: Path) -> None:
    reference = write_tiny_checkpoint(
        tmp_path / "ref.pth", native=False, categoricals=20, classes=20
    )
    with pytest.raises(ConfigError, match=r"records no game .* pass --dreamer-game freeway"):
        check_checkpoint(AuditSettings(checkpoint=str(reference), rank=3), tmp_path / "cache")


def test_a_warm_check_reads_the_cached_facts_and_never_loads_the_checkpoint(
    tiny: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = AuditSettings(checkpoint=tiny, rank=3)
    check_checkpoint(settings, cache)
    import pytest_dreamer_audit.model.checkpoint as checkpoint

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the checkpoint was loaded again")

    monkeypatch.setattr(checkpoint, "load_checkpoint", refuse)
    check_checkpoint(settings, cache)  # the facts come from the verified cache entry
    entry = next(path for path in cache.glob("agent-*") if path.is_dir())
    (entry / "agent.json").write_text('{"categoricals": 99}')  # tampered: rebuilt, not trusted
    with pytest.raises(AssertionError, match="loaded again"), pytest.warns(CacheEntryWarning):
        check_checkpoint(settings, cache)
