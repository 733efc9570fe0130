"""Decoded views: beliefs are the decoder's reconstruction of each step's posterior mode, a
decoded factor is its best example's latent with the prototype written in, and both reach the
pictures and survive saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_dreamer_audit.analysis.pipeline import explain
from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import LatentState
from pytest_dreamer_audit.report.render import render_factor_gallery, render_rollout
from pytest_dreamer_audit.results.explanation import ExplainConfig, load_explanation
from pytest_dreamer_audit.rollout.rollouts import run_rollouts
from pytest_dreamer_audit.testing import tiny_agent


def parse_png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    agent = tiny_agent(seed=2)
    trajectory = run_rollouts(agent, "freeway", episodes=3, steps=12, seed=5)
    config = ExplainConfig(rank=3, top_k=6, stability_refits=0, decoded=True)
    return agent, trajectory, explain(trajectory, config, agent=agent)


def _decode(agent, stoch: torch.Tensor, deter: torch.Tensor) -> np.ndarray:  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return agent.obs_decoder(LatentState(stoch, stoch, deter).model_state).numpy()


def test_beliefs_are_the_reconstruction_of_each_posterior_mode(setup) -> None:  # type: ignore[no-untyped-def]
    agent, t, e = setup
    assert e.beliefs.shape == (12, 3, 2, 10, 10)
    classes = agent.sizes.classes
    mode = torch.nn.functional.one_hot(t.posterior_logits[4, 1].argmax(-1), classes).float()
    expected = _decode(agent, mode[None], t.deter[4, 1][None])[0]
    np.testing.assert_allclose(e.beliefs[4, 1], expected, atol=1e-5)
    assert not e.beliefs[~e.valid].any()


def test_a_decoded_factor_is_its_best_example_with_the_prototype_written_in(setup) -> None:  # type: ignore[no-untyped-def]
    agent, t, e = setup
    j = 1
    step, episode = (int(v) for v in e.factor_examples[j, 0])
    rows = np.flatnonzero((e.row_step == step) & (e.row_episode == episode))
    strongest = int(e.row_categorical[rows[np.argmax(e.activations[rows, j])]])
    classes = agent.sizes.classes
    stoch = torch.nn.functional.one_hot(t.posterior_logits[step, episode].argmax(-1), classes)
    stoch = stoch.float()
    stoch[strongest] = torch.nn.functional.one_hot(
        torch.tensor(int(e.prototypes[j].argmax())), classes
    ).float()
    expected = _decode(agent, stoch[None], t.deter[step, episode][None])[0]
    np.testing.assert_allclose(e.factor_decoded[j], expected, atol=1e-5)


def test_the_views_reach_the_pictures_and_survive_saving(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agent, t, e = setup
    plain = explain(t, ExplainConfig(rank=3, top_k=6, stability_refits=0), agent=agent)
    assert plain.beliefs.shape[0] == 0
    assert plain.factor_decoded.shape[0] == 0
    wider = parse_png_size(render_rollout(e, 0))[0] - parse_png_size(render_rollout(plain, 0))[0]
    assert wider > 60  # one more image column
    gallery = parse_png_size(render_factor_gallery(e))[0]
    assert gallery > parse_png_size(render_factor_gallery(plain))[0]
    loaded = load_explanation(e.save(tmp_path / "out"))
    np.testing.assert_array_equal(loaded.beliefs, e.beliefs)
    np.testing.assert_array_equal(loaded.factor_decoded, e.factor_decoded)


def test_views_need_the_decoder() -> None:
    agent = tiny_agent(seed=2)
    agent.obs_decoder = None
    trajectory = run_rollouts(agent, "freeway", episodes=2, steps=5, seed=0)
    with pytest.raises(ConfigError, match="the decoded views need the agent's ObsDecoder"):
        explain(trajectory, ExplainConfig(rank=3, stability_refits=0, decoded=True), agent=agent)
