"""Hostile runs, as a user runs pytest (pytester): no break may end in INTERNALERROR (exit code
3) or a raw traceback; each ends in one line that says what is wrong, why, and how to fix it
(issue 30: reports, cache entries, checkpoints saved over, baselines, the HTML report, the
signing key, files with identical bytes)."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest

from pytest_dreamer_audit.errors import CacheEntryWarning
from pytest_dreamer_audit.plugin import cache as cache_module
from pytest_dreamer_audit.plugin.cache import HMAC_ENV, LEDGER, MANIFEST
from pytest_dreamer_audit.testing import FAST_INI, write_tiny_checkpoint
from tests.html_checks import markup_offences, rendered_fragments, report_blob

INTERNAL_ERROR = pytest.ExitCode.INTERNAL_ERROR
AUDITED = """
def test_audited(dreamer_audit):
    pass
"""
CONFIGURED = """
def test_configured(dreamer_settings):
    pass
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    write_tiny_checkpoint(pytester.path / "tiny.pth", seed=1)
    pytester.makeini(FAST_INI)
    return pytester


def _cache(project: pytest.Pytester) -> Path:
    return project.path / ".pytest_cache" / "d" / "dreamer-audit"


def _builds(project: pytest.Pytester, prefix: str) -> int:
    ledger = _cache(project) / LEDGER
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    return sum(line.startswith(prefix) for line in lines)


def _agent_entry(project: pytest.Pytester) -> Path:
    (entry,) = [p for p in _cache(project).glob("agent-*") if p.is_dir()]
    return entry


def _one_line(result: pytest.RunResult, *parts: str) -> str:
    """The one output line holding every part (the message is never split over lines)."""
    assert result.ret != INTERNAL_ERROR, result.stdout.str()[-3000:]
    lines = result.stdout.lines + result.stderr.lines
    assert not any("INTERNALERROR" in line for line in lines)
    found = [line for line in lines if all(part in line for part in parts)]
    assert found, f"no line with {parts}:\n" + "\n".join(lines[-40:])
    return found[0]


# --- 1. INTERNALERROR ----------------------------------------------------------------------------


def test_a_tests_own_property_under_the_plugins_name_is_reported_not_fatal(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_mine(record_property):
            record_property("dreamer_audit", "{not json")

        def test_later():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)  # the later test ran
    assert result.ret == pytest.ExitCode.OK
    _one_line(result, "test_mine", "is not an audit summary", "record your own values under")


def test_a_manifest_nested_200000_deep_is_rebuilt_not_fatal(project: pytest.Pytester) -> None:
    project.makepyfile(CONFIGURED)
    project.runpytest("--dreamer-checkpoint", "tiny.pth").assert_outcomes(passed=1)
    entry = _agent_entry(project)
    (entry / MANIFEST).write_text("[" * 200_000 + "]" * 200_000)
    with pytest.warns(CacheEntryWarning, match="rebuilt: .* unreadable .RecursionError"):
        result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert _builds(project, "agent-") == 2  # rebuilt once, not failing every run
    assert project.runpytest("--dreamer-checkpoint", "tiny.pth").ret == pytest.ExitCode.OK
    assert _builds(project, "agent-") == 2


def test_a_signed_cache_refuses_a_deep_manifest_before_parsing_it(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HMAC_ENV, "ci-secret")
    project.makepyfile(CONFIGURED)
    project.runpytest("--dreamer-checkpoint", "tiny.pth").assert_outcomes(passed=1)
    entry = _agent_entry(project)
    (entry / MANIFEST).write_text("[" * 200_000 + "]" * 200_000)
    parsed: list[bytes] = []
    real_loads = json.loads
    monkeypatch.setattr(
        cache_module.json, "loads", lambda text, **kw: parsed.append(text) or real_loads(text)
    )
    with pytest.warns(CacheEntryWarning, match="rebuilt: the manifest is not signed"):
        result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    assert result.ret == pytest.ExitCode.OK
    assert not any(len(text) > 100_000 for text in parsed)  # refused by its signature, unread
    assert _builds(project, "agent-") == 2


def test_an_entry_that_cannot_be_deleted_is_moved_aside_and_rebuilt(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder with mode 000 cannot be emptied by its non-root owner; root ignores modes, so the
    # refusal is simulated where the package meets it: shutil.rmtree on the entry.
    project.makepyfile(CONFIGURED)
    project.runpytest("--dreamer-checkpoint", "tiny.pth").assert_outcomes(passed=1)
    entry = _agent_entry(project)
    (entry / MANIFEST).write_text("{damaged")
    real_rmtree = shutil.rmtree

    def rmtree(path: object, *args: object, **kwargs: object) -> None:
        if Path(str(path)) == entry:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real_rmtree(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_module.shutil, "rmtree", rmtree)
    with pytest.warns(CacheEntryWarning, match="rebuilt: .* unreadable"):
        result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert _builds(project, "agent-") == 2
    cache_module.verify_entry(entry, entry.name)


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
    reason="root reads and deletes folders of mode 000; simulated in the test above",
)
def test_an_entry_folder_of_mode_000_is_rebuilt(project: pytest.Pytester) -> None:
    project.makepyfile(CONFIGURED)
    project.runpytest("--dreamer-checkpoint", "tiny.pth").assert_outcomes(passed=1)
    entry = _agent_entry(project)
    entry.chmod(0)
    try:
        result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
        assert result.ret == pytest.ExitCode.OK
    finally:
        for moved in [entry, *_cache(project).glob(".dreamer-audit-unusable-*")]:
            if moved.exists():
                moved.chmod(0o755)


def test_a_full_disk_at_start_up_is_one_usage_line(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(directory: Path, key: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "write_manifest", full)
    project.makepyfile(CONFIGURED)
    result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _one_line(
        result,
        "could not be written (No space left on device)",
        "the disk is full; free some space, or point --dreamer-cache-dir",
    )


# --- 6. the signing key fails closed -------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "  "])
def test_an_empty_signing_key_stops_the_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv(HMAC_ENV, secret)
    project.makepyfile(CONFIGURED)
    for args in ([], ["--dreamer-checkpoint", "tiny.pth"]):
        result = project.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        _one_line(result, f"{HMAC_ENV} is set but empty", "set it to the secret, or unset it")
    assert not (_cache(project) / LEDGER).exists()  # nothing was built, or trusted, unsigned


# --- 9. raw control bytes, unreadable folders ----------------------------------------------------


def test_control_bytes_in_a_missing_checkpoint_are_escaped(project: pytest.Pytester) -> None:
    project.makepyfile(CONFIGURED)
    result = project.runpytest("--dreamer-checkpoint", "gone\x1b[2J\x1b[31m.pth")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "\x1b" not in result.stderr.str() + result.stdout.str()
    _one_line(result, "gone\\x1b[2J\\x1b[31m.pth: no such file")


def test_an_unwritable_artifacts_folder_fails_the_test_in_one_line(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_dreamer_audit.plugin import fixtures

    def refused(directory: Path, *args: object) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(directory))

    monkeypatch.setattr(fixtures, "write_artifacts", refused)
    project.makepyfile(AUDITED)
    result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    result.assert_outcomes(errors=1)
    line = _one_line(result, "cannot write this test's artifacts", "(Permission denied)")
    assert "point --dreamer-artifacts at another directory" in line
    assert "Traceback" not in result.stdout.str()


# --- 4. baselines from the whole node id ----------------------------------------------------------


def test_same_named_modules_in_same_named_folders_get_their_own_baselines(
    project: pytest.Pytester,
) -> None:
    test = "def test_regression(dreamer_audit):\n    dreamer_audit.check_baseline()\n"
    for team in ("a", "b"):
        folder = project.path / team / "tests"
        folder.mkdir(parents=True)
        (folder / "test_agent.py").write_text(test)
    shared = project.path / "baselines"
    result = project.runpytest(
        "--import-mode=importlib",
        "--dreamer-checkpoint",
        "tiny.pth",
        "--dreamer-baseline-dir",
        str(shared),
        "--dreamer-update-baselines",
    )
    result.assert_outcomes(failed=2)  # each "baseline created", neither "would both write"
    # The short summary repeats a message in full when the terminal is wide enough (CI's is), so
    # the files named are counted, not the lines.
    named = set(re.findall(r"baseline (?:created|updated) at (\S+\.json)", result.stdout.str()))
    assert len(named) == 2
    assert "would both write" not in result.stdout.str()
    assert len(list(shared.rglob("*.json"))) == 2


# --- 7. files with identical bytes ---------------------------------------------------------------


def test_three_names_with_identical_bytes_each_name_their_own_file(
    project: pytest.Pytester,
) -> None:
    for name in ("b.pth", "c.pth"):
        shutil.copyfile(project.path / "tiny.pth", project.path / name)
    project.makepyfile(AUDITED)
    args = ["--dreamer-checkpoint", "tiny.pth", "--dreamer-checkpoint", "b.pth"]
    args += ["--dreamer-checkpoint", "c.pth", "--dreamer-artifacts", "out"]
    result = project.runpytest(*args)
    result.assert_outcomes(passed=3)
    assert _builds(project, "explanation-") == 1  # one explanation for the three
    named = sorted(
        audit["checkpoint"]
        for summary in (project.path / "out").glob("*/summary.json")
        for audit in json.loads(summary.read_text())["audits"]
    )
    assert named == ["b.pth", "c.pth", "tiny.pth"]
    summary = result.stdout.str().split("- dreamer-audit -")[-1].splitlines()
    rows = [line.split(" (")[0] for line in summary if "(freeway, " in line]
    assert rows == ["tiny", "b", "c"]  # one row each, as in the HTML report's summary


# --- 5. no script in the report ------------------------------------------------------------------

ARTIFACTS_PAYLOAD = "art\"><img src=x onerror=document.title='PWNED-artifacts'>"


def test_an_artifacts_folder_named_with_markup_stays_text_in_the_report(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(AUDITED)
    result = project.runpytest(
        "--dreamer-checkpoint",
        "tiny.pth",
        "--dreamer-artifacts",
        ARTIFACTS_PAYLOAD,
        "--html=report.html",
        "--self-contained-html",
    )
    result.assert_outcomes(passed=1)
    fragments = rendered_fragments(report_blob(project.path / "report.html"))
    links = [html for where, html in fragments if "col-links" in html]
    assert links, "no Links cell"
    assert "art%22%3E%3Cimg" in links[0]  # the folder's name, percent-encoded in the URL
    for where, html in fragments:
        assert markup_offences(html) == [], where
