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
        "-n 4",
        "if: always()",  # the evidence of a failing audit is published too
        "dreamer-audit-artifacts/",
    ):
        assert piece in recipe, piece
