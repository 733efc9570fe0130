"""The pytest-html report and the CLI's index.html in headless Chromium: the pages render, every
explanation image decodes, and markup injected through test ids, checkpoint labels and paths
does not run.

Chromium comes from Debian's packages (``apt-get install chromium``); the tests skip where no
Chromium is on PATH. They drive the ``chromium`` binary only: ``--dump-dom`` (the DOM after the
page's scripts ran), ``--screenshot``, and, to read ``naturalWidth``, a copy of the page with a
small checking script appended. Screenshots are kept in the test's tmp dir and copied to
``/tmp/browser_screens/``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from pytest_dreamer_audit.cli import INDEX_FILE
from tests.html_checks import (
    HEADLESS_CHROMIUM,
    ID_PAYLOAD,
    LABEL_PAYLOAD,
    markup_offences,
    parse_html,
    report_blob,
)

CHROMIUM = next(
    (
        found
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (found := shutil.which(name))
    ),
    None,
)
SCREENS = Path("/tmp/browser_screens")
WINDOW = (1280, 1800)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs Chromium on PATH (Debian: apt-get install chromium)"
    ),
]

CHECK_IMAGES = """
<script>
(() => {
  // Every image extra of a pytest-html report as an <img>: the load event waits for them all.
  const holder = document.createElement('div')
  holder.hidden = true
  const container = document.getElementById('data-container')
  if (container) {
    const data = JSON.parse(container.dataset.jsonblob)
    for (const entries of Object.values(data.tests)) {
      for (const entry of entries) {
        for (const extra of entry.extras || []) {
          if (extra.format_type !== 'image') continue
          const img = document.createElement('img')
          img.dataset.name = extra.name
          img.src = extra.content
          holder.appendChild(img)
        }
      }
    }
  }
  document.body.appendChild(holder)
  window.addEventListener('load', () => {
    const results = []
    for (const img of document.images) {
      if (!img.getAttribute('src')) continue  // pytest-html's empty viewer of a test without media
      const extra = img.parentElement === holder
      const src = img.getAttribute('src')
      results.push({
        where: extra ? 'extra' : (src.startsWith('data:') ? 'embedded' : 'page'),
        name: extra ? img.dataset.name : (src.startsWith('data:') ? img.alt : src.slice(0, 40)),
        width: img.naturalWidth,
        height: img.naturalHeight,
        shown_width: img.clientWidth,  // without the border
        shown_height: img.clientHeight,
      })
    }
    const out = document.createElement('pre')
    out.id = 'image-check'
    out.textContent = JSON.stringify(results)
    document.body.appendChild(out)
  })
})()
</script>
"""
"""Appended to a copy of a page: after every image loaded, lists the decoded size of each and the
size it is shown at: the ones in the page (by file name, or embedded as data URIs by their
caption) and (in a pytest-html report) every image extra, whichever one the report's media viewer
shows."""


def chromium(page: Path, profile: Path, *flags: str) -> str:
    """Run headless Chromium on ``page`` with ``flags``; returns its stdout."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        *HEADLESS_CHROMIUM,
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *flags,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done.stdout


def dump_dom(page: Path, profile: Path) -> str:
    dom = chromium(page, profile, "--dump-dom")
    assert "<body" in dom, f"no DOM from {page}: {dom[:200]!r}"
    return dom


def screenshot(page: Path, profile: Path, target: Path) -> np.ndarray:
    """A PNG of the page's first screen, checked to be an image with content."""
    chromium(page, profile, f"--screenshot={target}")
    pixels = imread(target)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 16, f"{target} is blank ({len(colours)} colours)"
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target, SCREENS / target.name)
    return pixels


def decoded_images(page: Path, profile: Path) -> list[dict[str, object]]:
    """Every image's decoded size, from a copy of ``page`` (next to it, so that relative image
    paths resolve) with :data:`CHECK_IMAGES` appended."""
    copy = page.with_name(f"check-{page.name}")
    copy.write_text(
        page.read_text(encoding="utf-8").replace("</body>", CHECK_IMAGES + "</body>"),
        encoding="utf-8",
    )
    try:
        dom = dump_dom(copy, profile)
    finally:
        copy.unlink()
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the image check did not run"
    results: list[dict[str, object]] = json.loads(parse_html(found.group(1)).text[0])
    return results


def assert_nothing_ran(dom: str) -> None:
    """No payload's effect in the DOM after the page's scripts ran."""
    title = re.search(r"<title[^>]*>(.*?)</title>", dom, re.DOTALL)
    assert title is not None
    assert "PWNED" not in title.group(1)
    assert not re.search(r'id="pwned', dom, re.IGNORECASE)
    assert markup_offences(dom) == []


def test_unescaped_payload_runs_in_this_browser(tmp_path: Path) -> None:
    """Control: inserted the way pytest-html inserts its cells (a template's innerHTML), the
    raw parameter-id payload does run here, so the checks below can see an injection."""
    page = tmp_path / "control.html"
    cell = json.dumps(f"<td>{ID_PAYLOAD}</td>")
    page.write_text(
        "<!DOCTYPE html><html><head><title>control</title></head><body><table><tr id=row>"
        f"</tr></table><script>const t = document.createElement('template'); t.innerHTML = "
        f"{cell}; document.getElementById('row').appendChild(t.content)</script></body></html>",
        encoding="utf-8",
    )
    dom = dump_dom(page, tmp_path / "profile")
    assert 'id="pwned-id"' in dom
    assert "<title>control</title>" in dom  # innerHTML never runs <script> elements


def test_pytest_html_report_renders_images_and_runs_no_injected_markup(
    evil_project_report: Path, tmp_path: Path
) -> None:
    report = evil_project_report
    profile = tmp_path / "profile"
    dom = dump_dom(report, profile)
    assert_nothing_ran(dom)
    shown = "".join(parse_html(dom).text)
    assert f"test_plain[{ID_PAYLOAD}]" in shown  # rendered by the report's script, as text
    assert f"test_audited[{LABEL_PAYLOAD}]" in shown
    assert "Audited checkpoints" in shown

    # The pictures are embedded in the extras' HTML, not as pytest-html image extras (its
    # 320 x 240 viewer crops them): the top steps and the factor gallery, once, as the two
    # audited tests share one explanation; the full grids are links.
    blob = report_blob(report)
    extras = [extra for entries in blob["tests"].values() for e in entries for extra in e["extras"]]
    assert [x for x in extras if x["format_type"] == "image"] == []
    embedded = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", json.dumps(extras))
    assert len(embedded) == 2
    sizes = [imread(io.BytesIO(base64.b64decode(png)), format="png").shape for png in embedded]
    assert all(shape[0] > 200 and shape[1] > 300 for shape in sizes), sizes
    # In the browser each decodes and is shown at its own size (no downscaling at a
    # 1280-pixel window: the text in it stays as legible as in the PNG).
    decoded = [d for d in decoded_images(report, profile) if d["where"] == "embedded"]
    assert len(decoded) == 2, decoded
    for d in decoded:
        assert (d["shown_width"], d["shown_height"]) == (d["width"], d["height"]), d
    assert sorted((int(str(d["height"])), int(str(d["width"]))) for d in decoded) == sorted(
        shape[:2] for shape in sizes
    )

    screenshot(report, profile, tmp_path / "pytest-html-report.png")


def test_cli_index_renders_images_and_runs_no_injected_markup(
    evil_cli: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(evil_cli, out)
    index = out / INDEX_FILE
    profile = tmp_path / "profile"
    dom = dump_dom(index, profile)
    assert_nothing_ran(dom)
    assert LABEL_PAYLOAD in "".join(parse_html(dom).text)

    pngs = sorted(p.name for p in out.glob("*.png"))
    decoded = decoded_images(index, profile)
    assert sorted(str(d["name"]) for d in decoded) == pngs
    assert all(int(str(d["width"])) > 0 and int(str(d["height"])) > 0 for d in decoded), decoded

    screenshot(index, profile, tmp_path / "cli-index.png")


def test_an_artifacts_folder_named_with_markup_runs_nothing_in_the_report(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Issue 30: the artifacts link (pytest-html's Links column, written raw into ``href``)."""
    from pytest_dreamer_audit.testing import FAST_INI, write_tiny_checkpoint

    write_tiny_checkpoint(pytester.path / "tiny.pth", seed=1)
    pytester.makeini(FAST_INI)
    pytester.makepyfile("def test_audited(dreamer_audit):\n    pass\n")
    folder = "art\"><img src=x onerror=document.title='PWNED-artifacts'>"
    result = pytester.runpytest(
        "--dreamer-checkpoint",
        "tiny.pth",
        "--dreamer-artifacts",
        folder,
        "--html=report.html",
        "--self-contained-html",
        "-o",
        "render_collapsed=",
    )
    result.assert_outcomes(passed=1)
    dom = dump_dom(pytester.path / "report.html", tmp_path / "profile")
    assert_nothing_ran(dom)
    assert "art%22%3E%3Cimg" in dom  # the link is there, its folder name percent-encoded
