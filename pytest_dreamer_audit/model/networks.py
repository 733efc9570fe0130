"""The DreamerV2 networks, with the parameter names of the reference PyTorch MinAtar checkpoints.

Each class here owns one ``state_dict`` of the checkpoint format (``ObsEncoder``, ``ObsDecoder``,
``RSSM`` and the dense heads ``ActionModel``, ``RewardDecoder``, ``ValueModel``,
``DiscountModel``), so a reference file loads into them with ``load_state_dict(strict=True)``.
Sizes come from :class:`ModelSizes`; nothing here reads a checkpoint (see ``checkpoint.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = [
    "OBSERVATION_SIZE",
    "RSSM",
    "DenseModel",
    "ModelSizes",
    "ObsDecoder",
    "ObsEncoder",
    "conv_output_side",
]

OBSERVATION_SIZE = 10
"""MinAtar observations are 10 x 10 grids."""


def conv_output_side(kernel: int, convolutions: int = 3, side: int = OBSERVATION_SIZE) -> int:
    """Side of the feature map after ``convolutions`` valid, stride-1 convolutions."""
    return side - convolutions * (kernel - 1)


@dataclass(frozen=True)
class ModelSizes:
    """Every size of a DreamerV2 MinAtar agent; the defaults are the reference configuration."""

    channels: int
    """Observation channels (Freeway POMDP: 2, MDP: 7)."""
    actions: int
    """Size of the game's minimal action set (Freeway: 3)."""
    deter: int = 200
    """Size of the GRU's deterministic state h_t."""
    categoricals: int = 20
    """Number of categorical distributions C in the stochastic state."""
    classes: int = 20
    """Number of classes K per categorical."""
    embedding: int = 200
    """Size of the encoded observation fed to the posterior."""
    node: int = 200
    """Hidden width of the prior and posterior networks."""
    depth: int = 16
    """Channels of the first convolution (the next two have 2x and 4x)."""
    kernel: int = 3
    """Convolution kernel side."""
    actor_hidden: int = 100
    """Hidden width of the actor."""
    actor_layers: int = 3
    """Hidden layers of the actor."""
    head_hidden: int = 100
    """Hidden width of the reward, value and discount heads."""
    head_layers: int = 3
    """Hidden layers of the reward, value and discount heads."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(
                    f"ModelSizes.{name} must be a positive integer, got {value!r}; "
                    "every network size is a count of units, channels or layers"
                )
        if conv_output_side(self.kernel) < 1:
            raise ConfigError(
                f"ModelSizes.kernel={self.kernel} leaves no pixels after three valid convolutions "
                f"of a {OBSERVATION_SIZE}x{OBSERVATION_SIZE} observation; use a kernel of 3 or 4"
            )

    @property
    def stoch(self) -> int:
        """Flattened stochastic state size ``categoricals * classes``."""
        return self.categoricals * self.classes

    @property
    def model_state(self) -> int:
        """Size of ``cat[deter, stoch]``, the input of the actor and the heads."""
        return self.deter + self.stoch

    @property
    def conv_features(self) -> int:
        """Flattened size of the encoder's last feature map."""
        return 4 * self.depth * conv_output_side(self.kernel) ** 2


class ObsEncoder(nn.Module):
    """Three valid convolutions with ELU, flattened, then a linear map to the embedding.

    Shape:
        - obs: ``[B, channels, 10, 10]`` float
        - output: ``[B, embedding]``
    """

    def __init__(self, sizes: ModelSizes) -> None:
        super().__init__()
        d, k = sizes.depth, sizes.kernel
        self.convolutions = nn.Sequential(
            nn.Conv2d(sizes.channels, d, k),
            nn.ELU(),
            nn.Conv2d(d, 2 * d, k),
            nn.ELU(),
            nn.Conv2d(2 * d, 4 * d, k),
            nn.ELU(),
        )
        # The reference uses an identity (no parameters) when the sizes already agree.
        self.fc_1: nn.Module = (
            nn.Identity()
            if sizes.embedding == sizes.conv_features
            else nn.Linear(sizes.conv_features, sizes.embedding)
        )

    def forward(self, obs: Tensor) -> Tensor:
        features = self.convolutions(obs)
        return self.fc_1(features.flatten(start_dim=1))


class ObsDecoder(nn.Module):
    """Linear map of the model state to a feature map, then three transposed convolutions.

    Shape:
        - model_state: ``[B, deter + stoch]``
        - output: ``[B, channels, 10, 10]``, the mean of a unit-variance Gaussian per pixel
    """

    def __init__(self, sizes: ModelSizes) -> None:
        super().__init__()
        d, k = sizes.depth, sizes.kernel
        self.feature_shape = (4 * d, conv_output_side(k), conv_output_side(k))
        self.linear: nn.Module = (
            nn.Identity()
            if sizes.model_state == sizes.conv_features
            else nn.Linear(sizes.model_state, sizes.conv_features)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * d, 2 * d, k),
            nn.ELU(),
            nn.ConvTranspose2d(2 * d, d, k),
            nn.ELU(),
            nn.ConvTranspose2d(d, sizes.channels, k),
        )

    def forward(self, model_state: Tensor) -> Tensor:
        features = self.linear(model_state).reshape(-1, *self.feature_shape)
        return self.decoder(features)


class DenseModel(nn.Module):
    """MLP with ELU between layers: the actor (``outputs=actions``) and the scalar heads.

    Shape:
        - x: ``[..., inputs]``
        - output: ``[..., outputs]``
    """

    def __init__(self, inputs: int, hidden: int, layers: int, outputs: int) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        width = inputs
        for _ in range(layers):
            modules += [nn.Linear(width, hidden), nn.ELU()]
            width = hidden
        modules.append(nn.Linear(width, outputs))
        self.model = nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class RSSM(nn.Module):
    """The recurrent state-space model's networks (the step logic lives in ``agent.py``).

    ``fc_embed_state_action``: ``[stoch + actions] -> [deter]`` (Linear, ELU);
    ``rnn``: GRU cell ``[deter] x [deter] -> [deter]``;
    ``fc_prior``: ``[deter] -> [stoch]`` logits;
    ``fc_posterior``: ``[deter + embedding] -> [stoch]`` logits.
    """

    def __init__(self, sizes: ModelSizes) -> None:
        super().__init__()
        self.rnn = nn.GRUCell(sizes.deter, sizes.deter)
        self.fc_embed_state_action = nn.Sequential(
            nn.Linear(sizes.stoch + sizes.actions, sizes.deter), nn.ELU()
        )
        self.fc_prior = nn.Sequential(
            nn.Linear(sizes.deter, sizes.node), nn.ELU(), nn.Linear(sizes.node, sizes.stoch)
        )
        self.fc_posterior = nn.Sequential(
            nn.Linear(sizes.deter + sizes.embedding, sizes.node),
            nn.ELU(),
            nn.Linear(sizes.node, sizes.stoch),
        )

    def transition(self, stoch: Tensor, deter: Tensor, action: Tensor) -> Tensor:
        """One deterministic step: ``deter' = GRU(ELU(W cat[stoch, action]), deter)``.

        Shape:
            - stoch: ``[B, stoch]``, deter: ``[B, deter]``, action: ``[B, actions]`` one-hot
            - output: ``[B, deter]``
        """
        return self.rnn(self.fc_embed_state_action(torch.cat([stoch, action], dim=-1)), deter)
