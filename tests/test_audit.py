"""The audit cache over real entries: computed once, and every file of an entry tamper-proof."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pytest_dreamer_audit.errors import CacheEntryWarning
from pytest_dreamer_audit.plugin.audit import AuditCache
from pytest_dreamer_audit.plugin.cache import LEDGER, MANIFEST
from pytest_dreamer_audit.settings import AuditSettings
from pytest_dreamer_audit.testing import write_tiny_checkpoint


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuditSettings, Path]:
    """A cache with one trajectory and one explanation entry, built once for the module."""
    root = tmp_path_factory.mktemp("pristine")
    checkpoint = write_tiny_checkpoint(root / "tiny.pth")
    settings = AuditSettings(
        checkpoint=str(checkpoint), episodes=2, steps=8, rank=3, top_k=2, render_episodes=1,
        stability_refits=1,
    )  # fmt: skip
    cache = root / "cache"
    AuditCache(cache).explanation(settings)
    return settings, cache


@pytest.fixture
def cache_copy(pristine: tuple[AuditSettings, Path], tmp_path: Path) -> tuple[AuditSettings, Path]:
    settings, cache = pristine
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy, symlinks=True)
    return settings, copy


def _entry(cache: Path, prefix: str) -> Path:
    (entry,) = [p for p in cache.iterdir() if p.is_dir() and p.name.startswith(prefix)]
    return entry


def _builds(cache: Path) -> int:
    return len((cache / LEDGER).read_text().splitlines())


def test_a_second_cache_object_computes_nothing(cache_copy: tuple[AuditSettings, Path]) -> None:
    settings, cache = cache_copy
    result = AuditCache(cache).explanation(settings)
    assert _builds(cache) == 2  # the rollouts and the explanation, once each
    assert [p.name for p in result.images] == ["rollout-0.png", "top-steps.png", "factors.png"]


def _set_number(path: Path) -> None:
    summary = json.loads(path.read_text())
    summary["metrics"]["sanity_spearman"] = -1.0
    path.write_text(json.dumps(summary))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def _symlink_to_a_secret(path: Path) -> None:
    secret = path.parent.parent / "secret.txt"
    secret.write_text("root:x:0:0")
    path.unlink()
    path.symlink_to(secret)


def _pickle_npy(path: Path) -> None:
    np.save(path.parent / "extra.npy", np.array([{"run": "os.system"}], dtype=object))


EXPLANATION_FILES = (
    "summary.json",
    "explanation.npz",
    "rollout-0.png",
    "top-steps.png",
    "factors.png",
    "settings.json",
)
TAMPER: dict[str, Callable[[Path], None]] = {
    "truncate": _truncate,
    "flip-byte": _flip,
    "symlink": _symlink_to_a_secret,
    "pickle-npy": _pickle_npy,
}


@pytest.mark.parametrize("name", EXPLANATION_FILES)
@pytest.mark.parametrize("how", list(TAMPER))
def test_every_file_of_an_explanation_entry_is_checked(
    cache_copy: tuple[AuditSettings, Path], name: str, how: str
) -> None:
    settings, cache = cache_copy
    entry = _entry(cache, "explanation-")
    TAMPER[how](entry / name)
    with pytest.warns(CacheEntryWarning, match=rf"{entry.name} rebuilt: "):
        result = AuditCache(cache).explanation(settings)
    assert _builds(cache) == 3  # the explanation again, not the rollouts
    assert not any(p.is_symlink() for p in entry.iterdir())
    assert "root:x" not in b"".join(p.read_bytes() for p in result.images).decode("latin-1")
    assert math.isnan(result.explanation.metrics.sanity_spearman) or (
        result.explanation.metrics.sanity_spearman != -1.0
    )


def test_an_edited_metric_never_reaches_an_assertion(
    cache_copy: tuple[AuditSettings, Path],
) -> None:
    settings, cache = cache_copy
    entry = _entry(cache, "explanation-")
    genuine = json.loads((entry / "summary.json").read_text())["metrics"]["sanity_spearman"]
    _set_number(entry / "summary.json")
    with pytest.warns(CacheEntryWarning, match="summary.json does not match its digest|wrong size"):
        result = AuditCache(cache).explanation(settings)
    assert result.explanation.metrics.sanity_spearman == pytest.approx(genuine)


@pytest.mark.parametrize("how", ["truncate", "flip-byte", "symlink"])
def test_the_trajectory_entry_is_checked(cache_copy: tuple[AuditSettings, Path], how: str) -> None:
    settings, cache = cache_copy
    entry = _entry(cache, "rollouts-")
    TAMPER[how](entry / "trajectory.pt")
    with pytest.warns(CacheEntryWarning, match=rf"{entry.name} rebuilt: "):
        trajectory = AuditCache(cache).trajectory(settings)
    assert trajectory.episodes == 2
    assert _builds(cache) == 3


def test_a_manifest_recomputed_over_forged_arrays_is_caught_by_validation(
    cache_copy: tuple[AuditSettings, Path],
) -> None:
    # Someone rewrites explanation.npz with NaN prototypes and fixes the manifest's digests: the
    # loader's validation refuses what the package cannot have written.
    import hashlib

    settings, cache = cache_copy
    entry = _entry(cache, "explanation-")
    with np.load(entry / "explanation.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["prototypes"] = np.full_like(arrays["prototypes"], np.nan)
    np.savez_compressed(entry / "explanation.npz", **arrays)
    manifest = json.loads((entry / MANIFEST).read_text())
    blob = (entry / "explanation.npz").read_bytes()
    manifest["files"]["explanation.npz"] = {
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
    }
    (entry / MANIFEST).write_text(json.dumps(manifest))
    with pytest.warns(CacheEntryWarning, match="prototypes is not an array of finite floats"):
        result = AuditCache(cache).explanation(settings)
    assert np.isfinite(result.explanation.prototypes).all()


# --- hash the bytes you load, and load from those bytes (issue 30) --------------------------------


def test_a_checkpoint_saved_over_during_the_session_is_never_filed_under_the_old_key(
    tmp_path: Path,
) -> None:
    from pytest_dreamer_audit.errors import ConfigError

    checkpoint = write_tiny_checkpoint(tmp_path / "best.pth", seed=1)
    settings = AuditSettings(
        checkpoint=str(checkpoint), episodes=2, steps=6, rank=3, top_k=2, render_episodes=1,
        stability_refits=0,
    )  # fmt: skip
    cache = AuditCache(tmp_path / "cache")
    old = cache.digest(str(checkpoint))  # a warm run hashes the file and loads nothing
    write_tiny_checkpoint(checkpoint, seed=2)  # a trainer saves a new best meanwhile
    with pytest.raises(ConfigError, match="changed while this run was using it.*audit a copy"):
        cache.explanation(settings)
    entries = [p for p in (tmp_path / "cache").glob("explanation-*") if p.is_dir()]
    assert entries == []  # nothing filed under the old bytes' key
    assert cache.digest(str(checkpoint)) == old


def test_the_pictures_shown_are_the_verified_copies_not_the_shared_entry(
    cache_copy: tuple[AuditSettings, Path], tmp_path: Path
) -> None:
    from pytest_dreamer_audit.report.html import pictures_html
    from pytest_dreamer_audit.report.records import AuditRecord

    settings, cache = cache_copy
    result = AuditCache(cache).explanation(settings)
    assert not any(image.is_relative_to(cache) for image in result.images)
    entry = _entry(cache, "explanation-")
    genuine = (entry / "top-steps.png").read_bytes()
    # After the check, the shared picture is swapped for a hard link to another file.
    other = tmp_path / "secret.png"
    other.write_bytes(b"\x89PNG other file")
    (entry / "top-steps.png").unlink()
    (entry / "top-steps.png").hardlink_to(other)
    shown = next(image for image in result.images if image.name == "top-steps.png")
    assert shown.read_bytes() == genuine
    record = AuditRecord(
        checkpoint=settings.checkpoint, label="tiny", key=result.key, game="freeway",
        settings=dataclasses.asdict(settings), metrics=result.explanation.metrics, mean_return=0.0,
        images=tuple((str(image), image.name) for image in result.images),
    )  # fmt: skip
    import base64

    assert base64.b64encode(genuine).decode() in pictures_html(record)
