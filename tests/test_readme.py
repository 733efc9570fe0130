"""The README's audit example is a real audit: it passes on the bundled checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "checkpoints" / "freeway_pomdp.pth"


def _audit_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- audit-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- audit-example --> python block"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_audit_example_passes_on_the_bundled_checkpoint(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_audit=_audit_example())
    args = (f"--dreamer-checkpoint={CHECKPOINT}", "-p", "no:cacheprovider")
    first = pytester.runpytest(*args)
    # The baseline is written on the first run, and that test fails once, as documented.
    first.assert_outcomes(passed=4, failed=1)
    first.stdout.fnmatch_lines(["*_ test_no_regression*", "*baseline created at*"])
    pytester.runpytest(*args).assert_outcomes(passed=5)


def test_the_readme_ci_recipe_uses_real_flags_and_keeps_every_piece() -> None:
    from pytest_dreamer_audit.plugin.cache import HMAC_ENV
    from pytest_dreamer_audit.settings import OPTIONS

    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- ci-recipe -->\n```yaml\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- ci-recipe --> block"
    recipe = match.group(1)
    flags = {option.flag for option in OPTIONS} | {"--dreamer-checkpoint"}
    used = set(re.findall(r"--dreamer-[a-z-]+", recipe))
    assert used, "the recipe passes no --dreamer-* option"
    assert used <= flags, f"unknown flags {sorted(used - flags)}"
    cache_dir = re.search(r"--dreamer-cache-dir (\S+)", recipe)
    assert cache_dir is not None
    assert f"path: {cache_dir.group(1)}" in recipe  # the cached folder is the one the run uses
    for piece in (
        "pip install torch==2.13.0",  # the CPU build first, as in the two commands
        "actions/cache@",
        f"{HMAC_ENV}: ${{{{ secrets.{HMAC_ENV} }}}}",  # signed cache entries (the trust model)
        "--html=audit.html --self-contained-html",
        "-n auto",
        "if: always()",  # the evidence of a failing audit is published too
        "dreamer-audit-artifacts/",
    ):
        assert piece in recipe, piece


def _recipe_audit_command() -> list[str]:
    """The audit step's ``run: >`` command of the README's CI recipe, as YAML folds it (the
    lines of a folded block scalar joined by single spaces), split like a shell would."""
    import shlex

    text = (ROOT / "README.md").read_text()
    recipe = re.search(r"<!-- ci-recipe -->\n```yaml\n(.*?)```", text, re.S)
    assert recipe, "README.md lost its <!-- ci-recipe --> block"
    step = re.search(r"- name: audit\n(?:.*\n)*?(\s+)run: >\n((?:\1  .*\n)+)", recipe.group(1))
    assert step, "the recipe's audit step has no folded run: > command"
    return shlex.split(" ".join(line.strip() for line in step.group(2).splitlines()))


def test_the_readme_ci_recipes_audit_command_runs(pytester: pytest.Pytester) -> None:
    """The recipe's pytest invocation, run as written in a project of its layout (a tiny
    agent at ``checkpoints/agent.pth``, an audit test in ``tests/audit``): it passes, uses the
    cache folder the recipe keeps, writes the report and the evidence it publishes."""
    from pytest_dreamer_audit.testing import FAST_INI, write_tiny_checkpoint

    command = _recipe_audit_command()
    assert command[0] == "pytest"
    assert command[command.index("-n") + 1] == "auto"
    write_tiny_checkpoint(pytester.path / "checkpoints" / "agent.pth")
    pytester.makeini(FAST_INI)
    audit = pytester.path / "tests" / "audit"
    audit.mkdir(parents=True)
    (audit / "test_agent.py").write_text(
        "def test_agent(dreamer_audit):\n    dreamer_audit.assert_mean_return(min_return=0.0)\n"
    )
    result = pytester.runpytest_subprocess(*command[1:])
    result.assert_outcomes(passed=1)
    assert (pytester.path / ".dreamer-audit-cache").is_dir()
    assert (pytester.path / "audit.html").stat().st_size > 10_000
    assert list((pytester.path / "dreamer-audit-artifacts").glob("*/summary.json"))
