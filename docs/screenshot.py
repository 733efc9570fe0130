"""Remake ``docs/audit-report.png``: run the main job's audit of the bundled checkpoint into a
scratch folder and photograph the first screen of its HTML report in headless Chromium.

    python docs/screenshot.py [--chromium /usr/bin/chromium]

Needs Chromium (Debian's ``chromium`` package). The report is the main job's (README, "The two
commands"); the picture shows its first 1440 x 1400 pixels.
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


def main() -> None:
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
        photograph = [
            args.chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={work / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--virtual-time-budget=5000",
            f"--screenshot={TARGET}",
            report.as_uri(),
        ]
        subprocess.run(photograph, check=True, capture_output=True, timeout=120)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
