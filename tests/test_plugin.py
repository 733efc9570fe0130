"""The plugin end to end, through pytester: options, marker, fixtures, caching, assertions,
baselines, artifacts, the HTML report and xdist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dreamer_audit.testing import FAST_INI, write_tiny_checkpoint


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A test project with a tiny Freeway checkpoint and fast settings in its ini file."""
    write_tiny_checkpoint(pytester.path / "tiny.pth", seed=1)
    pytester.makeini(FAST_INI)
    return pytester


def _ledger(project: pytest.Pytester) -> list[str]:
    path = project.path / ".pytest_cache" / "d" / "dreamer-audit" / "computations.log"
    return path.read_text().split() if path.exists() else []


def test_help_lists_every_option_in_its_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    assert "auditing DreamerV2 agents (pytest-dreamer-audit):" in text
    for flag in ("--dreamer-checkpoint", "--dreamer-episodes", "--dreamer-update-baselines"):
        assert flag in text
    assert "dreamer_rank (string)" in text  # the same-named ini key
    # A flag shows the values it takes, a number its name.
    assert "--dreamer-probes=true|false" in text
    assert "=PROBES" not in text
    assert "--dreamer-rank=RANK" in text


def test_settings_come_from_ini_then_cli_then_marker(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        def test_ini_and_cli(dreamer_settings):
            assert dreamer_settings.episodes == 2      # ini
            assert dreamer_settings.steps == 9         # command line beats ini
            assert dreamer_settings.score == "surprise"

        @pytest.mark.dreamer_audit(steps=4, pomdp=True)
        def test_marker(dreamer_settings):
            assert dreamer_settings.steps == 4
            assert dreamer_settings.pomdp == "true"
        """
    )
    result = project.runpytest(
        "--dreamer-checkpoint",
        "tiny.pth",
        "--dreamer-steps",
        "9",
        "--dreamer-score",
        "surprise",
        "--strict-markers",
    )
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--dreamer-episodes", "0"],
            "--dreamer-episodes / dreamer_episodes: expected a positive integer, got 0",
        ),
        (["--dreamer-game", "pong"], "unknown game 'pong'; MinAtar has asterix"),
        (["--dreamer-score", "saliency"], "expected one of activation, reconstruction, surprise"),
        (["--dreamer-device", "tpu"], "expected auto, cpu, cuda or cuda:N, got 'tpu'"),
        (["--dreamer-checkpoint", "missing.pth"], "--dreamer-checkpoint missing.pth: no such file"),
        (
            ["--dreamer-checkpoint", "tiny.pth", "--dreamer-artifacts", "/proc/forbidden/x"],
            "artifacts directory /proc/forbidden/x is not writable",
        ),
    ],
)
def test_bad_settings_fail_at_start_up(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    project.makepyfile("def test_nothing(): pass")
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--dreamer-rank", "6"],
            "--dreamer-rank 6 is larger than the 5 columns of the NMF matrix of tiny.pth in the pooled layout (4 categoricals x 5 classes)",
        ),
        (
            ["--dreamer-game", "breakout"],
            "tiny.pth takes 2 observation channels, but breakout (POMDP) has 3; check --dreamer-game and --dreamer-pomdp",
        ),
        (
            ["--dreamer-baseline-dir", "nowhere"],
            "--dreamer-baseline-dir nowhere does not exist; create it, or pass --dreamer-update-baselines",
        ),
    ],
)
def test_settings_that_do_not_fit_the_checkpoint_fail_at_start_up(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    project.makepyfile("def test_nothing(): pass")
    result = project.runpytest("--dreamer-checkpoint", "tiny.pth", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_a_broken_checkpoint_fails_at_start_up(project: pytest.Pytester) -> None:
    (project.path / "broken.pth").write_text("not a checkpoint")
    project.makepyfile("def test_nothing(): pass")
    result = project.runpytest("--dreamer-checkpoint", "broken.pth")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "dreamer-audit: broken.pth: not a torch checkpoint" in result.stderr.str()


def test_cuda_without_cuda_fails_at_start_up(project: pytest.Pytester) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    project.makepyfile("def test_nothing(): pass")
    result = project.runpytest("--dreamer-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "sees no CUDA GPU" in result.stderr.str()


def test_tests_run_once_per_checkpoint_with_its_name_in_the_id(project: pytest.Pytester) -> None:
    write_tiny_checkpoint(project.path / "other.pth", seed=2)
    project.makepyfile(
        "def test_agent(dreamer_agent):\n    assert dreamer_agent.sizes.classes == 5\n"
    )
    result = project.runpytest(
        "--dreamer-checkpoint", "tiny.pth", "--dreamer-checkpoint", "other.pth", "-v"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_agent?tiny? PASSED*", "*test_agent?other? PASSED*"])


def test_without_a_checkpoint_the_fixtures_say_how_to_give_one(project: pytest.Pytester) -> None:
    project.makepyfile("def test_agent(dreamer_agent):\n    pass\n")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no checkpoint to audit; pass --dreamer-checkpoint PATH*"])


def test_marker_checkpoint_and_unknown_marker_settings(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_good="""
        import pytest

        @pytest.mark.dreamer_audit(checkpoint="tiny.pth")
        def test_marker_checkpoint(dreamer_rollouts):
            assert dreamer_rollouts.steps == 6
        """
    )
    project.runpytest().assert_outcomes(passed=1)
    # A typo in a marker stops the whole run at start-up, naming the test and the likely word.
    project.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.dreamer_audit(checkpoint="tiny.pth", episdoes=3)
        def test_unknown(dreamer_settings):
            pass
        """
    )
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_typo.py::test_unknown: @pytest.mark.dreamer_audit got an unknown setting "
         "'episdoes'; did you mean 'episodes'?"]
    )  # fmt: skip
    assert "During handling" not in result.stderr.str()


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("rank=0", "@pytest.mark.dreamer_audit(rank=0): expected a positive integer, got 0"),
        ('checkpoint="missing.pth"', "(checkpoint=...) missing.pth: no such file"),
        ('checkpoint="."', "(checkpoint=...) . is a directory"),
        ("rank=400", "rank 400 is larger than the 5 columns"),
        ("episodes=4096, steps=100000", "over the 8 GiB limit"),
    ],
)
def test_bad_markers_stop_the_run_at_start_up(
    project: pytest.Pytester, marker: str, message: str
) -> None:
    project.makepyfile(
        f"""
        import pytest

        @pytest.mark.dreamer_audit({marker})
        def test_x(dreamer_settings):
            pass
        """
    )
    result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_explanations_are_computed_once_and_reused_across_runs(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_a(dreamer_explanation):
            assert dreamer_explanation.rank == 3

        def test_b(dreamer_audit, dreamer_rollouts):
            assert dreamer_audit.explanation.episodes == dreamer_rollouts.episodes == 2
        """
    )
    project.runpytest("--dreamer-checkpoint", "tiny.pth").assert_outcomes(passed=2)
    first = _ledger(project)
    assert sum(entry.startswith("explanation-") for entry in first) == 1
    assert sum(entry.startswith("rollouts-") for entry in first) == 1
    project.runpytest("--dreamer-checkpoint", "tiny.pth").assert_outcomes(passed=2)
    assert _ledger(project) == first  # the second run computed nothing


def test_assertion_messages_give_number_threshold_and_evidence(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_return(dreamer_audit):
            dreamer_audit.assert_mean_return(min_return=5.0)

        def test_event(dreamer_audit):
            dreamer_audit.assert_top_observations_coincide("chicken_row", min_precision=1.1)

        def test_factor(dreamer_audit):
            dreamer_audit.assert_some_factor_coincides("chicken_row", min_precision=1.1)
        """
    )
    result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert re.search(
        r"mean return is 0\.000 \(std 0\.000 over 2 episodes of up to 6 steps\), "
        r"below the required 5\.000",
        out,
    )
    # Two episodes have two pairings: the episode-swap null cannot go below p = 0.5, so both
    # claims are refused with the reason and the fix, before any threshold is looked at.
    refusals = re.findall(
        r"cannot claim anything at level 0\.05: 2 episode\(s\) give the episode-swap null "
        r"\(facts of other episodes, step for step\) at most 2 pairings, so no p-value can go "
        r"below 1/2 = 0\.5, above the level 0\.05; record at least 4 episodes "
        r"\(--dreamer-episodes\)",
        out,
    )
    assert len(refusals) >= 2
    # A set: with CI set, pytest repeats the full messages in its short summary.
    evidence = set(re.findall(r"Evidence: (\S+)", out))
    assert len(evidence) == 3
    for directory in map(Path, evidence):
        assert (directory / "summary.json").is_file()
        assert sorted(p.name for p in directory.glob("*.png")) == [
            "0-tiny-factors.png",
            "0-tiny-rollout-0.png",
            "0-tiny-top-steps.png",
        ]
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["audits"][0]["label"] == "tiny"


def test_baseline_workflow_fail_pass_change_update(project: pytest.Pytester) -> None:
    project.makepyfile("def test_regression(dreamer_audit):\n    dreamer_audit.check_baseline()\n")
    args = ("--dreamer-checkpoint", "tiny.pth")
    created = project.runpytest(*args)
    created.assert_outcomes(failed=1)
    created.stdout.fnmatch_lines(["*baseline created at *test_regression_tiny-*.json*"])
    folder = project.path / "dreamer_baselines" / "test_baseline_workflow_fail_pass_change_update"
    (baseline,) = folder.glob("test_regression_tiny-*.json")
    assert len(baseline.stem.rsplit("-", 1)[1]) == 12
    project.runpytest(*args).assert_outcomes(passed=1)
    stored = json.loads(baseline.read_text())
    stored["score_mean"] += 0.5
    stored["top_observations"] = [[0, 0]]
    baseline.write_text(json.dumps(stored))
    changed = project.runpytest(*args)
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(
        ["*drifted from the baseline*", "*score_mean: baseline*", "*top-k observations: Jaccard*"]
    )
    updated = project.runpytest(*args, "--dreamer-update-baselines")
    updated.assert_outcomes(failed=1)
    updated.stdout.fnmatch_lines(["*baseline updated at*"])
    project.runpytest(*args).assert_outcomes(passed=1)


def test_terminal_summary_names_each_audited_checkpoint(project: pytest.Pytester) -> None:
    project.makepyfile("def test_a(dreamer_explanation):\n    pass\n")
    result = project.runpytest("--dreamer-checkpoint", "tiny.pth")
    result.stdout.fnmatch_lines(
        [
            "*- dreamer-audit -*",
            "tiny (freeway, surprise score, pooled layout, rank 3, 2x6): return 0, rel. error *",
        ]
    )


def _embedded_images(report: Path) -> int:
    return report.read_text().count("data:image/png;base64,")


def test_html_report_embeds_the_grids_for_passing_failing_and_setup_failures(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken(dreamer_audit):
            raise RuntimeError("a fixture after the explanation failed")

        def test_pass(dreamer_explanation):
            pass

        def test_fail(dreamer_audit):
            dreamer_audit.assert_action_fractions(max_fractions={"down": 1.0})
            dreamer_audit.assert_mean_return(min_return=1.0)

        def test_setup(broken):
            pass

        def test_plain():
            pass
        """
    )
    result = project.runpytest(
        "--dreamer-checkpoint", "tiny.pth", "--html=report.html", "--self-contained-html"
    )
    result.assert_outcomes(passed=2, failed=1, errors=1)
    report = project.path / "report.html"
    # Two images (the top steps, the factor gallery), embedded once: the three audited tests
    # share one explanation, and the later two name the test that shows its pictures. The full
    # grid is linked from each test's artifacts folder, not embedded.
    assert _embedded_images(report) == 2
    text = report.read_text()
    assert text.count("pictures of this explanation are shown") == 2
    assert "Audited checkpoints" in text
    assert text.count("dreamer-audit:") >= 3
    # The explanation's tables too: shown with the first test, named by the other two, while
    # each test keeps its own checks.
    assert text.count("dreamer-audit-facts") == 1
    assert text.count("tables of this explanation are shown") == 2
    # The Links column points each audited test at its artifacts folder, relative to the report.
    import html as html_module
    import re

    links = re.findall(
        r'href=\\?"(dreamer-audit-artifacts/[^"\\]+/)\\?"', html_module.unescape(text)
    )
    assert len(set(links)) == 3
    assert all((project.path / link / "summary.json").is_file() for link in set(links))
    # The failing test lists its check: the assertion with its threshold and the measured value.
    unescaped = html_module.unescape(html_module.unescape(text))
    assert unescaped.count("the checks of this test") == 1  # only test_fail made a check
    assert "<code>assert_mean_return(min_return=1.0)</code></td><td><b>FAILED</b></td>" in unescaped
    assert "mean return is 0.000 (std 0.000 over 2 episodes of up to 6 steps)" in unescaped
    assert re.search(
        r"<code>assert_action_fractions\(max_fractions=\{'down': 1\.0\}\)</code></td><td>passed</td>"
        r"<td>noop 0\.\d+, up 0\.\d+, down 0\.\d+</td>",
        unescaped,
    )


def test_without_pytest_html_nothing_breaks(project: pytest.Pytester) -> None:
    project.makepyfile("def test_a(dreamer_explanation):\n    pass\n")
    project.runpytest("--dreamer-checkpoint", "tiny.pth", "-p", "no:html").assert_outcomes(passed=1)


def test_four_xdist_workers_compute_each_explanation_exactly_once(project: pytest.Pytester) -> None:
    project.makepyfile(
        "\n".join(
            f"def test_{i}(dreamer_explanation):\n    assert dreamer_explanation.rank == 3\n"
            for i in range(8)
        )
    )
    result = project.runpytest_subprocess(
        "--dreamer-checkpoint", "tiny.pth", "-n", "4", "--html=report.html", "--self-contained-html"
    )
    result.assert_outcomes(passed=8)
    assert sum(entry.startswith("explanation-") for entry in _ledger(project)) == 1
    # The explanation's two pictures are embedded once in the report: the controller keeps
    # them in the first report of a test of it that arrives, whichever worker sent it, and every
    # other test names that one.
    assert _embedded_images(project.path / "report.html") == 2
    from tests.html_checks import report_blob, text_of

    tests = report_blob(project.path / "report.html")["tests"]
    extras = {
        nodeid: " ".join(text_of(x["content"]) for e in entries for x in e["extras"])
        for nodeid, entries in tests.items()
    }
    named = {
        re.search(r"shown with (\S+) \(", text).group(1)  # type: ignore[union-attr]
        for text in extras.values()
        if "shown with" in text
    }
    holders = [n for n, e in tests.items() if "data-dreamer-pictures" in json.dumps(e)]
    assert len(named) == 1
    assert named == set(holders)
    result.stdout.fnmatch_lines(
        ["tiny (freeway, surprise score, pooled layout, rank 3, 2x6): return 0*"]
    )


def test_importing_the_plugin_does_not_import_torch() -> None:
    code = "import sys, pytest_dreamer_audit.plugin.hooks\nprint('torch' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_pytest_run_without_audits_never_imports_torch(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "import sys\n\ndef pytest_sessionfinish():\n    print('TORCH', 'torch' in sys.modules)\n"
    )
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest_subprocess("-s", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*TORCH False*"])


@pytest.mark.parametrize("html", [False, True])
def test_a_broken_report_extra_never_aborts_the_session(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, html: bool
) -> None:
    # pytest-html is installed here, so the extras are made with or without --html; whatever
    # fails there becomes a warning in the report, not an INTERNALERROR.
    import pytest_dreamer_audit.report.html as report_html

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise OSError("factors.png vanished")

    monkeypatch.setattr(report_html, "html_extras", broken)
    project.makepyfile("def test_a(dreamer_explanation):\n    pass\n")
    args = ["--dreamer-checkpoint", "tiny.pth", "-p", "no:cacheprovider"]
    if html:
        args += ["--html", "report.html", "--self-contained-html"]
    result = project.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    if html:
        page = (project.path / "report.html").read_text()
        assert "the pictures of this test could not be attached: OSError: factors.png vanished" in (
            page.replace("&#x27;", "'")
        )


@pytest.mark.parametrize(("value", "expected"), [("auto", 1), ("2", 2)])
def test_the_thread_policy_is_applied_per_process(
    project: pytest.Pytester, value: str, expected: int
) -> None:
    project.makepyfile(
        f"""
        import torch

        def test_threads(dreamer_agent):
            assert torch.get_num_threads() == {expected}
        """
    )
    result = project.runpytest_subprocess(
        "--dreamer-checkpoint", "tiny.pth", "--dreamer-threads", value
    )
    result.assert_outcomes(passed=1)


def test_a_bad_thread_count_stops_the_run(project: pytest.Pytester) -> None:
    result = project.runpytest("--dreamer-threads", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--dreamer-threads / dreamer_threads: expected auto or a positive integer, got 0" in (
        result.stderr.str()
    )


def test_progress_lines_show_computations_and_stay_quiet_under_q(project: pytest.Pytester) -> None:
    project.makepyfile("def test_a(dreamer_explanation):\n    pass\n")
    args = ["--dreamer-checkpoint", "tiny.pth", "-p", "no:cacheprovider"]
    first = project.runpytest(*args, "-v")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(
        [
            "dreamer-audit: tiny: rolling out 2 x 6",
            "dreamer-audit: tiny (surprise score, pooled layout): explaining",
            "dreamer-audit: tiny (surprise score, pooled layout): factorize",  # a stage, under -v
            "dreamer-audit: tiny (surprise score, pooled layout): explained in * s",
        ]
    )
    # Cached now: nothing is computed, nothing is said; and -q silences a computation too.
    again = project.runpytest(*args)
    assert "rolling out" not in again.stdout.str()
    assert "explaining" not in again.stdout.str()
    quiet = project.runpytest(*args, "-q", "--dreamer-rank", "2")
    quiet.assert_outcomes(passed=1)
    assert "explaining" not in quiet.stdout.str()
    default = project.runpytest(*args, "--dreamer-rank", "1")
    assert "explaining" in default.stdout.str()
    assert ": factorize" not in default.stdout.str()  # stages only under -v


def test_a_warm_audit_never_imports_torch(project: pytest.Pytester) -> None:
    # Every explanation cached: the workers (here, the one process) read it, the report and the
    # assertions work, and torch is never imported. A cold run has to import it.
    project.makepyfile(
        report_torch="import sys\n\ndef pytest_sessionfinish():\n    print('TORCH', 'torch' in sys.modules)\n",
        test_a="def test_a(dreamer_audit):\n    dreamer_audit.assert_mean_return(min_return=-1.0)\n",
    )
    args = ["--dreamer-checkpoint", "tiny.pth", "-s", "-p", "report_torch", "test_a.py"]
    cold = project.runpytest_subprocess(*args)
    cold.assert_outcomes(passed=1)
    cold.stdout.fnmatch_lines(["*TORCH True*"])
    warm = project.runpytest_subprocess(*args, "--html=report.html", "--self-contained-html")
    warm.assert_outcomes(passed=1)
    warm.stdout.fnmatch_lines(["*TORCH False*"])


def test_a_reference_checkpoint_of_another_split_is_audited_with_the_split_settings(
    pytester: pytest.Pytester,
) -> None:
    """4 categoricals x 5 classes in the plain reference format: the shapes cannot tell the
    split, so the start-up error names the two settings; with them the audit runs."""
    write_tiny_checkpoint(
        pytester.path / "split.pth", seed=3, native=False, categoricals=4, classes=5
    )
    pytester.makeini(FAST_INI)
    pytester.makepyfile(
        "def test_it(dreamer_audit):\n"
        "    assert dreamer_audit.explanation.posterior_probs.shape[2:] == (4, 5)\n"
    )
    refused = pytester.runpytest("--dreamer-checkpoint=split.pth", "--dreamer-game=freeway")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        ["*shapes alone cannot tell*pass --dreamer-categoricals and --dreamer-classes*"]
    )
    audited = pytester.runpytest(
        "--dreamer-checkpoint=split.pth",
        "--dreamer-game=freeway",
        "--dreamer-categoricals=4",
        "--dreamer-classes=5",
    )
    audited.assert_outcomes(passed=1)
