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
