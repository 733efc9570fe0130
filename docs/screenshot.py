"""Remake ``docs/audit-report.png``: run the main job's audit of the bundled checkpoint into a
scratch folder and photograph its HTML report in headless Chromium, as a reader sees it.

    python docs/screenshot.py [--chromium /usr/bin/chromium]

Needs Chromium (Debian's ``chromium`` package). The report is the main job's (README, "The two
commands"); the picture is one 1440 x 1400 window of it, scrolled so that the first test's checks
and the explanation's pictures (embedded at their own size) are in view.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "audit-report.png"
WINDOW = (1440, 1400)
_TALL = 6000  # pixels: photographed whole, then the reader's window is cut out of it
_MARK = """<script>
window.addEventListener('load', () => {
  const extras = document.querySelector('.dreamer-audit')
  const out = document.createElement('pre')
  out.id = 'extras-top'
  out.textContent = extras ? Math.round(extras.getBoundingClientRect().top + window.scrollY) : 0
  document.body.appendChild(out)
})
</script>"""
"""Appended to a copy of the report: writes where the first test's dreamer-audit extras start.
(Chromium's headless screenshot of a scrolled page leaves the top of the window unpainted, so
the window is cut from a tall screenshot instead: the same pixels a reader scrolled there sees.)"""


def _chromium(binary: str, profile: Path, page: Path, *flags: str) -> str:
    sys.path.insert(0, str(ROOT))  # the browser tests' flags live with them in tests/
    from tests.html_checks import HEADLESS_CHROMIUM

    command = [
        binary,
        *HEADLESS_CHROMIUM,
        f"--user-data-dir={profile}",
        *flags,
        page.as_uri(),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    return done.stdout


def main() -> None:
    import re

    from matplotlib.image import imread, imsave

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        report = work / "audit.html"
        audit = [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "examples" / "test_freeway_audit.py"),
            f"--dreamer-checkpoint={ROOT / 'examples' / 'checkpoints' / 'freeway_pomdp.pth'}",
            f"--dreamer-cache-dir={work / 'cache'}",
            f"--dreamer-artifacts={work / 'artifacts'}",
            f"--html={report}",
            "--self-contained-html",
            "-o",
            "render_collapsed=skipped",
            "-p",
            "no:cacheprovider",
            "-q",
        ]
        subprocess.run(audit, check=True, cwd=work, env={**os.environ, "OMP_NUM_THREADS": "1"})
        marked = work / "marked.html"
        marked.write_text(
            report.read_text(encoding="utf-8").replace("</body>", _MARK + "</body>"),
            encoding="utf-8",
        )
        profile = work / "profile"
        size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
        dom = _chromium(args.chromium, profile, marked, size, "--dump-dom")
        found = re.search(r'<pre id="extras-top">(\d+)</pre>', dom)
        top = max(int(found.group(1)) - 80, 0) if found else 0
        tall = work / "tall.png"
        _chromium(
            args.chromium,
            profile,
            report,
            f"--window-size={WINDOW[0]},{_TALL}",
            f"--screenshot={tall}",
        )
        pixels = imread(tall)[top : top + WINDOW[1]]
        imsave(TARGET, pixels)
    print(f"wrote {TARGET} (the window from pixel {top} down)")


if __name__ == "__main__":
    main()
