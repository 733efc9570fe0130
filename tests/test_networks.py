from __future__ import annotations

import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.model.agent import build_agent
from pytest_dreamer_audit.model.networks import ModelSizes

# The table of checkpoint-format.md for Freeway POMDP (C_in = 2, A = 3), literally.
REFERENCE_SHAPES = {
    "ObsEncoder": {
        "convolutions.0.weight": (16, 2, 3, 3),
        "convolutions.0.bias": (16,),
        "convolutions.2.weight": (32, 16, 3, 3),
        "convolutions.2.bias": (32,),
        "convolutions.4.weight": (64, 32, 3, 3),
        "convolutions.4.bias": (64,),
        "fc_1.weight": (200, 1024),
        "fc_1.bias": (200,),
    },
    "RSSM": {
        "rnn.weight_ih": (600, 200),
        "rnn.weight_hh": (600, 200),
        "rnn.bias_ih": (600,),
        "rnn.bias_hh": (600,),
        "fc_embed_state_action.0.weight": (200, 403),
        "fc_embed_state_action.0.bias": (200,),
        "fc_prior.0.weight": (200, 200),
        "fc_prior.0.bias": (200,),
        "fc_prior.2.weight": (400, 200),
        "fc_prior.2.bias": (400,),
        "fc_posterior.0.weight": (200, 400),
        "fc_posterior.0.bias": (200,),
        "fc_posterior.2.weight": (400, 200),
        "fc_posterior.2.bias": (400,),
    },
    "ActionModel": {
        "model.0.weight": (100, 600),
        "model.0.bias": (100,),
        "model.2.weight": (100, 100),
        "model.2.bias": (100,),
        "model.4.weight": (100, 100),
        "model.4.bias": (100,),
        "model.6.weight": (3, 100),
        "model.6.bias": (3,),
    },
    "ObsDecoder": {
        "linear.weight": (1024, 600),
        "linear.bias": (1024,),
        "decoder.0.weight": (64, 32, 3, 3),
        "decoder.0.bias": (32,),
        "decoder.2.weight": (32, 16, 3, 3),
        "decoder.2.bias": (16,),
        "decoder.4.weight": (16, 2, 3, 3),
        "decoder.4.bias": (2,),
    },
}
HEAD_SHAPES = {
    "model.0.weight": (100, 600),
    "model.0.bias": (100,),
    "model.2.weight": (100, 100),
    "model.2.bias": (100,),
    "model.4.weight": (100, 100),
    "model.4.bias": (100,),
    "model.6.weight": (1, 100),
    "model.6.bias": (1,),
}


def test_default_sizes_reproduce_the_reference_parameter_table() -> None:
    agent = build_agent(ModelSizes(channels=2, actions=3), seed=0)
    shapes = {
        key: {name: tuple(t.shape) for name, t in module.state_dict().items()}
        for key, module in agent.present_modules().items()
    }
    expected = dict(REFERENCE_SHAPES)
    expected.update({key: HEAD_SHAPES for key in ("RewardDecoder", "ValueModel", "DiscountModel")})
    assert shapes == expected


def test_encoder_without_projection_has_no_fc_parameters() -> None:
    agent = build_agent(ModelSizes(channels=2, actions=3, embedding=1024), seed=0)
    assert not any(name.startswith("fc_1") for name in agent.obs_encoder.state_dict())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("deter", 0, "deter must be a positive integer"),
        ("classes", 2.5, "classes must be a positive integer"),
        ("actions", True, "actions must be a positive integer"),
        ("kernel", 5, "kernel=5 leaves no pixels"),
    ],
)
def test_sizes_reject_unusable_values(field: str, value: object, message: str) -> None:
    kwargs: dict[str, object] = {"channels": 2, "actions": 3, field: value}
    with pytest.raises(ConfigError, match=message):
        ModelSizes(**kwargs)  # type: ignore[arg-type]


def test_derived_sizes() -> None:
    sizes = ModelSizes(channels=2, actions=3, categoricals=16, classes=25, deter=100)
    assert (sizes.stoch, sizes.model_state, sizes.conv_features) == (400, 500, 1024)
