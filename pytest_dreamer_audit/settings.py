"""Audit settings: the ``--dreamer-*`` options, their ini keys, the marker, validation.

Torch-free: the plugin validates every value at start-up without importing torch. Each option
has a same-named ini key (``--dreamer-episodes`` <-> ``dreamer_episodes``); the command line
wins over the ini file, and ``@pytest.mark.dreamer_audit(...)`` wins over both for one test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import PYTEST, ConfigError, Spelling
from .games import GAMES, MAX_SEED, GameTarget, check_agent_fits, resolve_target
from .results.config import (
    LAYOUTS,
    RANDOMIZATIONS,
    SCORES,
    ClaimConfig,
    ExplainConfig,
    Layout,
    Randomization,
    Score,
    check_rank,
    layout_width,
)

__all__ = [
    "MARKER",
    "OPTIONS",
    "POMDP_CHOICES",
    "AuditSettings",
    "Option",
    "parse_value",
]

MARKER = "dreamer_audit"
POMDP_CHOICES = ("auto", "true", "false")


@dataclass(frozen=True)
class Option:
    """One setting: its field in :class:`AuditSettings`, flag, help and parser."""

    field: str
    help: str
    parse: Callable[[str], Any]
    default: str
    command_line: bool = True
    """Whether the ``dreamer-audit`` command has it too (``--<field>``); the artifact, cache and
    baseline folders are the plugin's own."""
    audit_setting: bool = True
    """Whether it is a field of :class:`AuditSettings` (what an audit computes); the folders and
    the thread count are how a run works, not what it computes, and stay out of cache keys."""

    @property
    def flag(self) -> str:
        return "--dreamer-" + self.field.replace("_", "-")

    @property
    def ini(self) -> str:
        return "dreamer_" + self.field


def _int_at_least(minimum: int, what: str, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise ConfigError(f"expected {what}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"expected at most {maximum:,}, got {value:,} (the up-front limit)")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")

# Up-front limits: far above any audit's needs, low enough that a typo cannot run for hours or
# exhaust memory. Memory is estimated and bounded against the checkpoint's sizes in
# :meth:`AuditSettings.check_agent` (``MAX_MEMORY_BYTES``).
MAX_EPISODES = 4096
MAX_STEPS = 100_000
MAX_TOP_K = 1000
MAX_REFITS = 20
MAX_RENDERED = 64
MAX_MEMORY_BYTES = 8 << 30
"""Largest estimated memory of one audit's rollouts and explanation (8 GiB)."""


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ConfigError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _game(text: str) -> str:
    if text and text not in GAMES:
        raise ConfigError(f"unknown game {text!r}; MinAtar has {', '.join(sorted(GAMES))}")
    return text


def _device(text: str) -> str:
    if (
        text in ("auto", "cpu")
        or text == "cuda"
        or (text.startswith("cuda:") and text[5:].isdigit())
    ):
        return text
    raise ConfigError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


AUTO_THREADS = 1
"""What ``--dreamer-threads auto`` means. On the project's 2-core VM with the other core busy,
64 x 50 rollouts took 0.60-0.74 s with one torch thread and 1.45-2.38 s with two (best of 3,
two rounds, one session): OpenMP threads contend with the other process or xdist worker. A
machine with cores to spare can ask for more."""


def _threads(text: str) -> int:
    if text == "auto":
        return AUTO_THREADS
    return _int_at_least(1, "auto or a positive integer", 256)(text)


def _text(text: str) -> str:
    return text


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"expected a significance level between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise ConfigError(f"expected a significance level between 0 and 1, got {value}")
    return value


def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"expected true or false, got {text!r}")


OPTIONS: tuple[Option, ...] = (
    Option("game", "MinAtar game; default: the checkpoint's native metadata", _game, ""),
    Option(
        "pomdp",
        "observe the POMDP channel subset: auto (metadata, else true), true or false",
        _choice(POMDP_CHOICES),
        "auto",
    ),
    Option("device", "auto (CUDA when present), cpu, cuda or cuda:N", _device, "auto"),
    Option(
        "episodes", "rollout episodes B", _int_at_least(1, "a positive integer", MAX_EPISODES), "16"
    ),
    Option("steps", "rollout steps L", _int_at_least(1, "a positive integer", MAX_STEPS), "50"),
    Option("rank", "NMF rank r", _positive_int, "10"),
    Option("score", f"importance score: {', '.join(SCORES)}", _choice(SCORES), "surprise"),
    Option("layout", "NMF layout: pooled or per_step", _choice(LAYOUTS), "pooled"),
    Option(
        "top_k",
        "observations highlighted per rollout and examples per factor",
        _int_at_least(1, "a positive integer", MAX_TOP_K),
        "5",
    ),
    Option(
        "seed",
        "seed of the first episode (episode b uses seed + b)",
        _int_at_least(0, "an integer >= 0", MAX_SEED),
        "0",
    ),
    Option(
        "stability_refits",
        "extra NMF fits for the stability metrics",
        _int_at_least(0, "an integer >= 0", MAX_REFITS),
        "2",
    ),
    Option(
        "skip_steps",
        "leave each episode's first N steps out of the explanation (a burn-in)",
        _int_at_least(0, "an integer >= 0", MAX_STEPS),
        "0",
    ),
    Option(
        "significance",
        "family-wise level of every claim the report, the gallery and the assertions make "
        "(maxT over factors, Holm over facts)",
        _level,
        "0.05",
    ),
    Option(
        "randomization",
        "model parameter randomization: full (one stage, the sanity check) or cascade (also the "
        "cascading and independent stages: 16 more replays and fits)",
        _choice(RANDOMIZATIONS),
        "full",
    ),
    Option(
        "probes",
        "also probe every game fact from the latents and their controls (linear, grouped by "
        "episode; several seconds per explanation)",
        _flag,
        "false",
    ),
    Option(
        "curves",
        "also draw the deletion and insertion curves of every head for the score's ranking",
        _flag,
        "false",
    ),
    Option(
        "decoded",
        "also decode what the world model believes it sees and each factor's prototype (shown "
        "in the rollout grids and the gallery)",
        _flag,
        "false",
    ),
    Option(
        "render_episodes",
        "rollout grids rendered per explanation",
        _int_at_least(0, "an integer >= 0", MAX_RENDERED),
        "4",
    ),
    Option(
        "threads",
        "torch threads per process (each xdist worker is one): auto (= 1, measured fastest on "
        "a 2-core machine) or N",
        _threads,
        "auto",
        audit_setting=False,
    ),
    Option(
        "artifacts",
        "directory for PNGs and JSON per test",
        _text,
        "dreamer-audit-artifacts",
        command_line=False,
        audit_setting=False,
    ),
    Option(
        "cache_dir",
        "on-disk explanation cache; default: .pytest_cache/d/dreamer-audit",
        _text,
        "",
        command_line=False,
        audit_setting=False,
    ),
    Option(
        "baseline_dir",
        "baselines directory; default: dreamer_baselines/ beside each test file",
        _text,
        "",
        command_line=False,
        audit_setting=False,
    ),
)
"""Every setting with a value (the checkpoint list and the update flag are separate)."""


def parse_value(option: Option, text: str) -> Any:
    """Parse one option's text; the error names the flag and the ini key."""
    try:
        return option.parse(text)
    except ConfigError as error:
        raise ConfigError(f"{option.flag} / {option.ini}: {error}") from None


class AgentShape(Protocol):
    """The sizes of an agent that decide whether it fits a game and a rank (``ModelSizes``)."""

    @property
    def categoricals(self) -> int: ...
    @property
    def classes(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def actions(self) -> int: ...
    @property
    def deter(self) -> int: ...


@dataclass(frozen=True)
class AuditSettings:
    """What one audit computes: a checkpoint and everything that shapes its explanation."""

    checkpoint: str
    game: str = ""
    pomdp: str = "auto"
    device: str = "auto"
    episodes: int = 16
    steps: int = 50
    rank: int = 10
    score: Score = "surprise"
    layout: Layout = "pooled"
    top_k: int = 5
    seed: int = 0
    stability_refits: int = 2
    skip_steps: int = 0
    significance: float = 0.05
    randomization: Randomization = "full"
    probes: bool = False
    curves: bool = False
    decoded: bool = False
    render_episodes: int = 4

    def __post_init__(self) -> None:
        if self.skip_steps >= self.steps:
            raise ConfigError(
                f"skip_steps {self.skip_steps} leaves none of the {self.steps} steps to explain; "
                "skip fewer steps or roll out more"
            )
        last = self.seed + self.episodes - 1
        if last > MAX_SEED:
            raise ConfigError(
                f"episode seeds run from {self.seed} to {last}, past MinAtar's largest seed "
                f"{MAX_SEED}; lower the seed to at most {MAX_SEED - self.episodes + 1}"
            )

    def estimated_bytes(self, sizes: AgentShape) -> int:
        """Peak memory of the rollouts and the explanation, estimated per episode-step: the
        latents (prior and posterior logits, samples, probabilities, scores: ~5 x C x K floats),
        the deterministic state, the observation, and the NMF rows with their activations, once
        for the rollouts and again for what the fits hold at once (the sanity check's replay
        and fit are the peak). For the reference agent and the defaults this is 40,640 bytes
        per episode-step, above the 34,904 measured (``benchmarks/scaling.md``: the slope of the
        process's peak over B x L up to 1024 x 50)."""
        latent = sizes.categoricals * sizes.classes
        per_step = 4 * (5 * latent + sizes.deter + sizes.categoricals * (self.rank + 4) + self.rank)
        per_step += 100 * sizes.channels
        refits = 1 + self.stability_refits + 1  # the fit, the refits, the sanity fit
        return self.episodes * self.steps * per_step * (2 + refits // 2)

    def with_overrides(self, overrides: Mapping[str, Any]) -> AuditSettings:
        """Apply a marker's keyword overrides, validated like the options."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"@pytest.mark.{MARKER} got unknown settings {unknown}; valid: {sorted(known)}"
            )
        parsed: dict[str, Any] = {}
        by_field = {option.field: option for option in OPTIONS}
        for name, value in overrides.items():
            if name == "checkpoint":
                parsed[name] = str(value)
            else:
                # a bool is spelled as on the command line (flags, the POMDP choice)
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                try:
                    parsed[name] = by_field[name].parse(text)
                except ConfigError as error:
                    raise ConfigError(f"@pytest.mark.{MARKER}({name}={value!r}): {error}") from None
        return dataclasses.replace(self, **parsed)

    @property
    def pomdp_flag(self) -> bool | None:
        """The POMDP flag, or None for "ask the checkpoint's metadata"."""
        return None if self.pomdp == "auto" else self.pomdp == "true"

    def explain_config(self) -> ExplainConfig:
        """The explanation these settings ask for (the one conversion of settings to config)."""
        return ExplainConfig(
            rank=self.rank,
            layout=self.layout,
            score=self.score,
            top_k=self.top_k,
            seed=self.seed,
            stability_refits=self.stability_refits,
            skip_steps=self.skip_steps,
            randomization=self.randomization,
            probes=self.probes,
            curves=self.curves,
            decoded=self.decoded,
        )

    def claim_config(self) -> ClaimConfig:
        """When an association counts as a finding, for these settings."""
        return ClaimConfig(level=self.significance)

    def check_agent(
        self,
        sizes: AgentShape,
        recorded_game: str | None,
        recorded_pomdp: bool | None,
        *,
        spelling: Spelling = PYTEST,
    ) -> GameTarget:
        """The game to play, after checking that the agent fits it and the rank fits the agent.

        Raises:
            ConfigError: a rank above the NMF row width, no game, or an agent whose channels or
                actions do not match the game (the message spelled for ``spelling``'s edge).
        """
        needed = self.estimated_bytes(sizes)
        if needed > MAX_MEMORY_BYTES:
            raise ConfigError(
                f"{self.episodes} episodes x {self.steps} steps of {self.checkpoint} would need "
                f"about {needed / 2**30:.1f} GiB (~{needed // (self.episodes * self.steps):,} "
                f"bytes per episode-step), over the {MAX_MEMORY_BYTES / 2**30:.0f} GiB limit; "
                "audit fewer episodes or steps"
            )
        check_rank(
            self.rank,
            layout_width(self.layout, sizes.categoricals, sizes.classes),
            rank_name=spelling.name("rank").rstrip("="),
            where=f"{self.checkpoint} in the {self.layout} layout ({sizes.categoricals} "
            f"categoricals x {sizes.classes} classes)",
        )
        target = self.target(recorded_game, recorded_pomdp, spelling=spelling)
        check_agent_fits(
            target, sizes.channels, sizes.actions, source=self.checkpoint, spelling=spelling
        )
        return target

    def target(
        self,
        recorded_game: str | None,
        recorded_pomdp: bool | None,
        *,
        spelling: Spelling = PYTEST,
    ) -> GameTarget:
        """The game and POMDP flag to play: these settings, else what the checkpoint records."""
        return resolve_target(
            self.game or None,
            self.pomdp_flag,
            recorded_game=recorded_game,
            recorded_pomdp=recorded_pomdp,
            source=self.checkpoint,
            spelling=spelling,
        )

    def key(self, checkpoint_digest: str, code: str = "") -> str:
        """Cache key: the checkpoint's content hash, every setting but the device, and ``code``
        (the package's source digest, so that a changed package never reuses old results).

        The device is left out on purpose: CPU and GPU runs give the same explanation to float
        tolerance, and a cache shared between them is what a user expects.
        """
        values = dataclasses.asdict(self)
        values.pop("checkpoint")
        values.pop("device")
        text = json.dumps({"checkpoint": checkpoint_digest, "code": code, **values}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def label(self) -> str:
        """Short human name of the checkpoint (its file stem)."""
        return Path(self.checkpoint).stem
