from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from pytest_dreamer_audit.cli import INDEX_FILE, main, write_index
from pytest_dreamer_audit.report.html import metric_rows_html
from pytest_dreamer_audit.report.page import index_page
from pytest_dreamer_audit.results.explanation import load_explanation
from pytest_dreamer_audit.testing import write_tiny_checkpoint

FAST = ["--episodes", "3", "--steps", "12", "--rank", "3", "--top-k", "3"]
FAST += ["--stability-refits", "1", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", "freeway")


@pytest.fixture(scope="module")
def audit(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "out"
    assert (
        main(["explain", str(checkpoint), "--out", str(out), "--render-episodes", "2", *FAST]) == 0
    )
    return out


def test_explain_writes_every_file(audit: Path) -> None:
    names = sorted(p.name for p in audit.iterdir())
    assert names == [
        ".dreamer-audit-out",
        "explanation.npz",
        "factors.png",
        "index.html",
        "rollout-0.png",
        "rollout-1.png",
        "summary.json",
        "top-steps.png",
    ]
    for png in audit.glob("*.png"):
        assert imread(png).shape[0] > 100


def test_summary_has_the_metrics_computed_with_the_agent(audit: Path) -> None:
    summary = json.loads((audit / "summary.json").read_text())
    assert summary["game"] == "freeway"  # from the checkpoint's metadata
    assert summary["episodes"] == 3
    assert summary["steps"] == 12
    assert summary["config"]["rank"] == 3
    metrics = summary["metrics"]
    for name in ("relative_error", "stability_mean_cosine", "sanity_spearman", "deletion_ratio"):
        assert isinstance(metrics[name], float)
        assert math.isfinite(metrics[name]), name
    explanation = load_explanation(audit)
    assert explanation.prototypes.shape == (3, 5)  # tiny agents: 4 categoricals x 5 classes


def test_index_references_every_png_and_the_metrics(audit: Path) -> None:
    page = (audit / INDEX_FILE).read_text()
    sources = set(re.findall(r'<img src="([^"]+)"', page))
    assert sources == {p.name for p in audit.glob("*.png")}
    assert "sanity_spearman" in page
    assert "deletion_ratio" in page
    assert page.count('<table class="dreamer-audit-facts">') == 1
    assert "<td>chicken_row</td><td>Spearman</td>" in page
    assert "<td>collision_visible</td><td>precision of top-20</td>" in page


def test_index_escapes_labels(audit: Path, tmp_path: Path) -> None:
    explanation = load_explanation(audit)
    evil = '<script>alert("x")</script>'
    write_index(tmp_path, explanation, [f"{evil}.png"], checkpoint=evil)
    page = (tmp_path / INDEX_FILE).read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_index_marks_a_metric_on_the_wrong_side_of_its_meaning(audit: Path, tmp_path: Path) -> None:
    explanation = load_explanation(audit)
    wrong = dataclasses.replace(
        explanation, metrics=dataclasses.replace(explanation.metrics, deletion_ratio=0.39)
    )
    page = (write_index(tmp_path, wrong, [])).read_text()
    assert '<span class="dreamer-audit-wrong-side"' in page
    assert "deletion_ratio 0.39 is not &gt; 1: on the wrong side of its meaning" in page
    right = dataclasses.replace(
        explanation, metrics=dataclasses.replace(explanation.metrics, deletion_ratio=1.7)
    )
    assert '<span class="dreamer-audit-wrong-side"' not in index_page(right, [])
    # The same metric rows as the pytest-html extras: one table builder for both.
    assert metric_rows_html([("deletion_ratio", 0.39)]) in page


def test_checkpoint_path_is_escaped_in_the_page(checkpoint: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "<script>alert(1)<"
    hostile.mkdir()
    copy = hostile / "agent.pth"
    copy.write_bytes(checkpoint.read_bytes())
    out = tmp_path / "out"
    args = ["explain", str(copy), "--out", str(out), "--render-episodes", "0", *FAST]
    args[args.index("--stability-refits") + 1] = "0"
    assert main(args) == 0
    page = (out / INDEX_FILE).read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;" in page


def test_missing_checkpoint_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pth"
    assert main(["explain", str(missing), "--out", str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dreamer-audit: error: ")
    assert str(missing) in err
    assert not (tmp_path / "out").exists()


def test_unknown_game_exits_2(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The option is parsed by the settings table's own validator, as a usage error.
    args = ["explain", str(checkpoint), "--out", str(tmp_path), "--game", "pong", *FAST]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "dreamer-audit explain: error: argument --game: unknown game 'pong'" in err
    assert "freeway" in err


def test_reference_checkpoint_without_game_asks_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = write_tiny_checkpoint(tmp_path / "ref.pth", "freeway", native=False)
    args = ["explain", str(reference), "--out", str(tmp_path / "out"), *FAST]
    args += ["--categoricals", "4", "--classes", "5"]
    assert main(args) == 2
    assert "--game" in capsys.readouterr().err


def test_library_hints_are_spelled_as_options(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tiny checkpoint is a POMDP agent: --mdp cannot work, and the hint names the option.
    assert main(["explain", str(checkpoint), "--out", str(tmp_path), "--mdp", *FAST]) == 2
    err = capsys.readouterr().err
    assert "pass --pomdp true" in err
    assert "pomdp=" not in err


def test_out_that_is_a_file_exits_2(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["explain", str(checkpoint), "--out", str(blocker), *FAST]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad", [["--rank", "0"], ["--score", "saliency"], ["--layout", "rows"], ["--episodes", "x"]]
)
def test_argparse_errors_exit_2(checkpoint: Path, tmp_path: Path, bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", str(checkpoint), "--out", str(tmp_path), *bad])
    assert exit_info.value.code == 2


def test_console_script_help() -> None:
    script = Path(sys.executable).parent / "dreamer-audit"
    result = subprocess.run([str(script), "explain", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--render-episodes" in result.stdout
    assert "CHECKPOINT" in result.stdout.upper()
    assert "--probes true|false" in result.stdout
    assert "PROBES" not in result.stdout


def test_parser_does_not_import_torch() -> None:
    code = (
        "import sys; from pytest_dreamer_audit.cli import build_parser; build_parser(); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rollout_figures_are_capped_by_episodes(checkpoint: Path, tmp_path: Path) -> None:
    args = ["explain", str(checkpoint), "--out", str(tmp_path), "--render-episodes", "9", *FAST]
    args[args.index("--stability-refits") + 1] = "0"
    assert main(args) == 0
    assert sorted(p.name for p in tmp_path.glob("rollout-*.png")) == [
        f"rollout-{b}.png" for b in range(3)
    ]
    assert np.isnan(load_explanation(tmp_path).metrics.stability_mean_cosine)


def test_options_come_from_the_settings_table() -> None:
    # Every command-line setting of the plugin is an option of the command, with its default.
    from pytest_dreamer_audit.cli import build_parser
    from pytest_dreamer_audit.settings import OPTIONS

    parser = build_parser()
    args = parser.parse_args(["explain", "x.pth", "--out", "o"])
    for option in OPTIONS:
        if option.command_line:
            assert getattr(args, option.field) == option.parse(option.default), option.field
    assert not hasattr(args, "cache_dir")
    assert parser.parse_args(["explain", "x.pth", "--out", "o", "--top-k", "7"]).top_k == 7


def _fast_args(checkpoint: Path, out: Path, *extra: str) -> list[str]:
    args = ["explain", str(checkpoint), "--out", str(out), *FAST, *extra]
    args[args.index("--stability-refits") + 1] = "0"
    return args


def test_out_holding_other_files_needs_force(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(_fast_args(checkpoint, tmp_path)) == 2
    assert "already holds files this command did not write (notes.txt)" in capsys.readouterr().err
    assert not (tmp_path / "index.html").exists()
    assert main(_fast_args(checkpoint, tmp_path, "--force")) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"  # untouched
    assert (tmp_path / "index.html").is_file()
    assert main(_fast_args(checkpoint, tmp_path)) == 0  # now the folder is its own


def test_the_input_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = write_tiny_checkpoint(tmp_path / "factors.png", "freeway")
    before = victim.read_bytes()
    assert main(_fast_args(victim, tmp_path, "--force")) == 2
    assert "is inside --out" in capsys.readouterr().err
    assert victim.read_bytes() == before


def test_stale_outputs_of_an_earlier_run_are_removed(checkpoint: Path, tmp_path: Path) -> None:
    assert main(_fast_args(checkpoint, tmp_path, "--render-episodes", "3")) == 0
    assert len(list(tmp_path.glob("rollout-*.png"))) == 3
    assert main(_fast_args(checkpoint, tmp_path, "--render-episodes", "1")) == 0
    assert sorted(p.name for p in tmp_path.glob("rollout-*.png")) == ["rollout-0.png"]


def test_an_interrupted_run_ends_in_one_line_and_its_rerun_takes_its_outputs_back(
    checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pytest_dreamer_audit.cli as cli

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the figures, before index.html

    with monkeypatch.context() as patch:
        patch.setattr(cli, "write_index", interrupted)
        assert main(_fast_args(checkpoint, tmp_path)) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "dreamer-audit: interrupted; what it wrote so far may be incomplete: rerun the same "
        "command to write it again"
    ]
    assert (tmp_path / "factors.png").is_file()  # written before the interrupt
    assert main(_fast_args(checkpoint, tmp_path)) == 0  # its own files: no --force needed
    assert (tmp_path / INDEX_FILE).is_file()
