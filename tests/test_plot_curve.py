"""Tests of ``research/plot_curve.py``: reading the trainer's curve CSV and drawing it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import matplotlib
import matplotlib.image
import pytest

matplotlib.use("Agg")
# Imported at collection, before any in-process pytester run (tests/test_readme.py) can import it
# inside its sys.modules snapshot and leave a second copy of its classes behind on restore.
import matplotlib.pyplot

from pytest_dreamer_audit.errors import ConfigError
from tests.research_scripts import import_research

HEADER = (
    "env_steps,grad_steps,hours,episodes,return_mean,entropy,wm_obs,wm_reward,wm_discount,"
    "wm_kl,actor_loss,critic_loss,ms_per_grad,eval_sampled,eval_greedy"
)
ROWS = (
    "8000,250,0.1,16,3.5,0.9,1,1,0,2,-1,0.1,800,,",  # a training row: no evaluation
    "9000,280,0.2,,,,,,,,,,,12.5,10.25",  # an evaluation row: nothing else
    "16000,500,0.3,32,5.0,0.7,1,1,0,2,-1,0.1,810,,",
)


@pytest.fixture(scope="module")
def plot_curve() -> ModuleType:
    """The example script, imported from its path."""
    return import_research("plot_curve")


@pytest.fixture
def curve_csv(tmp_path: Path) -> Path:
    path = tmp_path / "run.curve.csv"
    path.write_text("\n".join((HEADER, *ROWS)) + "\n")
    return path


def test_read_curve_keeps_each_column_where_it_was_logged(
    plot_curve: ModuleType, curve_csv: Path
) -> None:
    curve = plot_curve.read_curve(curve_csv, "main")
    assert curve.label == "main"
    assert curve.points["return_mean"] == ((8000, 3.5), (16000, 5.0))
    assert curve.points["entropy"] == ((8000, 0.9), (16000, 0.7))
    assert curve.points["eval_sampled"] == ((9000, 12.5),)
    assert curve.points["eval_greedy"] == ((9000, 10.25),)


def test_read_curve_refuses_a_file_that_is_not_a_learning_curve(
    plot_curve: ModuleType, tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("env_steps,return_mean\n1,2\n")
    with pytest.raises(ConfigError, match=r"lacks the columns \['entropy', 'eval_sampled'"):
        plot_curve.read_curve(other, "x")
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER + "\n")
    with pytest.raises(ConfigError, match="it has no rows"):
        plot_curve.read_curve(empty, "x")


def test_main_draws_a_png_with_one_label_per_curve(
    plot_curve: ModuleType, curve_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "curve.png"
    with pytest.raises(ConfigError, match="2 curves need as many --label, got 1"):
        plot_curve.main([str(curve_csv), str(curve_csv), "--label", "a", "--out", str(out)])
    assert not out.exists()
    argv = [str(curve_csv), "--label", "main", "--mark", "9000", "--out", str(out)]
    assert plot_curve.main(argv) == 0
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (715, 990)  # 9 x 6.5 inches at 110 dpi
    assert image[..., :3].std() > 0.05  # drawn, not blank
