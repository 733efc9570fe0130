"""Audit settings: the ``--dreamer-*`` options, their ini keys, the marker, validation.

Torch-free: the plugin validates every value at start-up without importing torch. Each option
has a same-named ini key (``--dreamer-episodes`` <-> ``dreamer_episodes``); the command line
wins over the ini file, and ``@pytest.mark.dreamer_audit(...)`` wins over both for one test.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from .errors import PYTEST, ConfigError, Spelling
from .games import (
    GAMES,
    MAX_SEED,
    GameTarget,
    check_agent_fits,
    check_episode_seeds,
    resolve_target,
)
from .results.config import (
    LAYOUTS,
    RANDOMIZATIONS,
    SCORES,
    ClaimConfig,
    ExplainConfig,
    Layout,
    Randomization,
    Score,
    check_horizons,
    check_rank,
    layout_width,
    read_horizons,
)

__all__ = [
    "MARKER",
    "OPTIONS",
    "POMDP_CHOICES",
    "AuditSettings",
    "Option",
    "PomdpMode",
    "Rule",
    "RunSettings",
    "marker_help",
    "parse_value",
    "rule_of",
]

MARKER = "dreamer_audit"
PomdpMode = Literal["auto", "true", "false"]
POMDP_CHOICES: tuple[PomdpMode, ...] = get_args(PomdpMode)

# Up-front limits: far above any audit's needs, low enough that a typo cannot run for hours or
# exhaust memory. Memory is estimated and bounded against the checkpoint's sizes in
# :meth:`AuditSettings.check_agent` (``MAX_MEMORY_BYTES``).
MAX_EPISODES = 4096
MAX_STEPS = 100_000
MAX_RANK = 4096
MAX_TOP_K = 1000
MAX_REFITS = 20
MAX_RENDERED = 64
MAX_THREADS = 256
MAX_MEMORY_BYTES = 8 << 30
"""Largest estimated memory of one audit's rollouts and explanation (8 GiB)."""

AUTO_THREADS = 1
"""What ``--dreamer-threads auto`` means. On the project's 2-core VM with the other core busy,
64 x 50 rollouts took 0.60-0.74 s with one torch thread and 1.45-2.38 s with two (best of 3,
two rounds, one session): OpenMP threads contend with the other process or xdist worker. A
machine with cores to spare can ask for more."""

_DIGITS = re.compile(r"-?[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Rule:
    """How one setting is written as text and which values it takes: the one place its help,
    parsing and validation live. Every flag, ini key, marker keyword and command-line option
    is derived from the rules of :class:`AuditSettings` and :class:`RunSettings`.

    Attributes:
        help: the one-line help of the flag, the ini key and the command line.
        read: text (a flag, an ini value) to a typed value; ConfigError if it is not one.
        check: a typed value to the same value; ConfigError "expected ..., got ..." otherwise.
        command_line: whether ``dreamer-audit explain`` has it too (``--<field>``).
    """

    help: str
    read: Callable[[str], Any]
    check: Callable[[Any], Any]
    command_line: bool = True

    def parse(self, text: str) -> Any:
        """Text to a checked value."""
        return self.check(self.read(text))


def _integer(
    what: str, minimum: int, maximum: int
) -> tuple[Callable[[str], int], Callable[[Any], int]]:
    """The reader and checker of an integer in ``[minimum, maximum]``: decimal ASCII digits only
    (no spaces, underscores or other scripts' digits), and an ``int`` that is not a bool."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected {what}, got {type(value).__name__} {value!r}")
        if value < minimum:
            raise ConfigError(f"expected {what}, got {value}")
        if value > maximum:
            raise ConfigError(f"expected at most {maximum:,}, got {value:,} (the up-front limit)")
        return value

    def read(text: str) -> int:
        if not _DIGITS.fullmatch(text):
            raise ConfigError(f"expected {what}, got {text!r}")
        return int(text)

    return read, check


def _integer_rule(help_text: str, what: str, minimum: int, maximum: int, **kw: Any) -> Rule:
    read, check = _integer(what, minimum, maximum)
    return Rule(help_text, read, check, **kw)


def _choice_rule(help_text: str, choices: tuple[str, ...], **kw: Any) -> Rule:
    def check(value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return Rule(help_text, str, check, **kw)


def _flag_rule(help_text: str) -> Rule:
    def read(text: str) -> bool:
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"expected true or false, got {text!r}")

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}")
        return value

    return Rule(help_text, read, check)


def _check_game(value: Any) -> str:
    if value != "" and value not in GAMES:
        close = difflib.get_close_matches(str(value), GAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown game {value!r}{hint}; MinAtar has {', '.join(sorted(GAMES))}")
    return str(value)


def _check_device(value: Any) -> str:
    text = str(value) if isinstance(value, str) else ""
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ConfigError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")


def _read_level(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"expected a significance level between 0 and 1, got {text!r}") from None


def _check_level(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(f"expected a significance level between 0 and 1, got {value!r}")
    return float(value)


def _read_threads(text: str) -> int:
    return AUTO_THREADS if text == "auto" else _THREADS[0](text)


def _check_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected a text, got {value!r}")
    return value


_THREADS = _integer("auto or a positive integer", 1, MAX_THREADS)


def setting(default: Any, rule: Rule) -> Any:
    """A settings field with its rule (``dataclasses.field`` with the rule as metadata)."""
    return dataclasses.field(default=default, metadata={"rule": rule})


def rule_of(owner: type, name: str) -> Rule:
    """The rule of one settings field."""
    rule = next(f for f in dataclasses.fields(owner) if f.name == name).metadata.get("rule")
    if not isinstance(rule, Rule):
        raise ConfigError(f"{owner.__name__}.{name} has no rule")
    return rule


def _check_fields(instance: object) -> None:
    """Check every ruled field of a settings dataclass; the error names the field."""
    for f in dataclasses.fields(instance):  # type: ignore[arg-type]
        rule = f.metadata.get("rule")
        if isinstance(rule, Rule):
            try:
                rule.check(getattr(instance, f.name))
            except ConfigError as error:
                raise ConfigError(f"{type(instance).__name__}.{f.name}: {error}") from None


@dataclass(frozen=True)
class Option:
    """One setting as the command line and the ini file see it, derived from its field.

    Attributes:
        field: the field's name. help, parse: its rule's. default: the default as text.
        command_line: whether ``dreamer-audit`` has it too. audit_setting: whether it is a field
            of :class:`AuditSettings` (what an audit computes) rather than of
            :class:`RunSettings` (how a run works: folders and threads, not in cache keys).
    """

    field: str
    help: str
    parse: Callable[[str], Any]
    default: str
    command_line: bool = True
    audit_setting: bool = True

    @property
    def flag(self) -> str:
        return "--dreamer-" + self.field.replace("_", "-")

    @property
    def ini(self) -> str:
        return "dreamer_" + self.field


def as_text(value: Any) -> str:
    """A default written as a flag's text (booleans as true/false, horizons as 1,3 or off)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "off"
    return str(value)


def _check_horizons(value: Any) -> tuple[int, ...]:
    if not isinstance(value, tuple):
        raise ConfigError(f"expected a tuple of horizons (or () for off), got {value!r}")
    checked = check_horizons(value)
    if checked != value:
        raise ConfigError(f"expected the horizons sorted, got {value!r}; use {checked!r}")
    return checked


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
    """What one audit computes: a checkpoint and everything that shapes its explanation.

    Every field but the checkpoint carries its :class:`Rule`: the flag, the ini key, the marker
    keyword and the command-line option of each, their help and their defaults are derived
    from these fields (:data:`OPTIONS`), and the explanation's defaults are
    :class:`ExplainConfig`'s. Every value is checked when the settings are built, from whichever
    edge they come.
    """

    checkpoint: str
    game: str = setting(
        "", Rule("MinAtar game; default: the checkpoint's native metadata", str, _check_game)
    )
    pomdp: PomdpMode = setting(
        "auto",
        _choice_rule(
            "observe the POMDP channel subset: auto (metadata, else true), true or false",
            POMDP_CHOICES,
        ),
    )
    device: str = setting(
        "auto", Rule("auto (CUDA when present), cpu, cuda or cuda:N", str, _check_device)
    )
    episodes: int = setting(
        16, _integer_rule("rollout episodes B", "a positive integer", 1, MAX_EPISODES)
    )
    steps: int = setting(50, _integer_rule("rollout steps L", "a positive integer", 1, MAX_STEPS))
    rank: int = setting(
        ExplainConfig.rank, _integer_rule("NMF rank r", "a positive integer", 1, MAX_RANK)
    )
    score: Score = setting(
        ExplainConfig.score, _choice_rule(f"importance score: {', '.join(SCORES)}", SCORES)
    )
    layout: Layout = setting(
        ExplainConfig.layout, _choice_rule("NMF layout: pooled or per_step", LAYOUTS)
    )
    top_k: int = setting(
        ExplainConfig.top_k,
        _integer_rule(
            "observations highlighted per rollout and examples per factor",
            "a positive integer",
            1,
            MAX_TOP_K,
        ),
    )
    seed: int = setting(
        ExplainConfig.seed,
        _integer_rule(
            "seed of the first episode (episode b uses seed + b)", "an integer >= 0", 0, MAX_SEED
        ),
    )
    stability_refits: int = setting(
        ExplainConfig.stability_refits,
        _integer_rule("extra NMF fits for the stability metrics", "an integer >= 0", 0, MAX_REFITS),
    )
    trust_episodes: int = setting(
        ExplainConfig.trust_episodes,
        _integer_rule(
            "episodes the replaying trust checks (3, 4, 6, 7) run on, the first with a step to "
            "explain; 0 = every episode (16: the size their thresholds were calibrated at)",
            "an integer >= 0",
            0,
            MAX_EPISODES,
        ),
    )
    skip_steps: int = setting(
        ExplainConfig.skip_steps,
        _integer_rule(
            "leave each episode's first N steps out of the explanation (a burn-in)",
            "an integer >= 0",
            0,
            MAX_STEPS,
        ),
    )
    significance: float = setting(
        ClaimConfig.level,
        Rule(
            "family-wise level of every claim the report, the gallery and the assertions make "
            "(maxT over factors, Holm over facts; both nulls)",
            _read_level,
            _check_level,
        ),
    )
    randomization: Randomization = setting(
        ExplainConfig.randomization,
        _choice_rule(
            "model parameter randomization: full (one stage, the sanity check) or cascade (also "
            "the cascading and independent stages: 16 more replays and fits)",
            RANDOMIZATIONS,
        ),
    )
    probes: bool = setting(
        ExplainConfig.probes,
        _flag_rule(
            "also probe every game fact from the latents and their controls (linear, grouped by "
            "episode; several seconds per explanation)"
        ),
    )
    curves: bool = setting(
        ExplainConfig.curves,
        _flag_rule(
            "also draw the deletion and insertion curves of every head for the score's ranking"
        ),
    )
    decoded: bool = setting(
        ExplainConfig.decoded,
        _flag_rule(
            "also decode what the world model believes it sees and each factor's prototype (shown "
            "in the rollout grids and the gallery)"
        ),
    )
    categoricals: int = setting(
        0,
        _integer_rule(
            "categoricals C of the stochastic state, for a reference-format checkpoint whose "
            "shapes cannot tell C from K (0: from the checkpoint)",
            "an integer >= 0",
            0,
            MAX_RANK,
        ),
    )
    classes: int = setting(
        0,
        _integer_rule(
            "classes K of each categorical, with --dreamer-categoricals (0: from the checkpoint)",
            "an integer >= 0",
            0,
            MAX_RANK,
        ),
    )
    imagination: tuple[int, ...] = setting(
        ExplainConfig.imagination,
        Rule(
            "open-loop imagination of the world model: comma-separated horizons (e.g. "
            "1,3,5,10), on (= 1,3,5,10) or off (the default; costs nothing)",
            read_horizons,
            _check_horizons,
        ),
    )
    render_episodes: int = setting(
        4,
        _integer_rule("rollout grids rendered per explanation", "an integer >= 0", 0, MAX_RENDERED),
    )

    def __post_init__(self) -> None:
        if not isinstance(self.checkpoint, str):
            raise ConfigError(
                f"AuditSettings.checkpoint: expected a path text, got {self.checkpoint!r}"
            )
        _check_fields(self)
        if (self.categoricals == 0) != (self.classes == 0):
            raise ConfigError(
                f"categoricals {self.categoricals} and classes {self.classes}: give both (the "
                "stochastic split C x K of a reference checkpoint) or neither (0: from the "
                "checkpoint)"
            )
        if self.imagination and max(self.imagination) >= self.steps:
            raise ConfigError(
                f"imagination horizon {max(self.imagination)} reaches past the {self.steps} "
                f"rollout steps; use horizons below {self.steps} or roll out more steps"
            )
        if self.skip_steps >= self.steps:
            raise ConfigError(
                f"skip_steps {self.skip_steps} leaves none of the {self.steps} steps to explain; "
                "skip fewer steps or roll out more"
            )
        check_episode_seeds(self.seed, self.episodes)

    def estimated_bytes(self, sizes: AgentShape) -> int:
        """Peak memory of the rollouts and the explanation, estimated per episode-step: 7
        latents of C x K floats (the rollouts' prior and posterior logits, their samples kept
        as class indices; at ``explain``'s peak, a stability refit's NMF rows and fit, each
        fit's temporaries a block of rows at a time; the replaying trust checks hold their
        replays for ``trust_episodes`` episodes only, issue 33), the deterministic state, the
        observation, and each row's activations and int32 indices. The fits run one at a
        time, so the refits do not add. For the reference agent and the defaults this is
        13,360 bytes per episode-step, 22-24% above the 10,794-10,992 measured in three runs
        (``benchmarks/memory.md``: the slope of the process's peak resident set from 16 x 50 to
        1024 x 50) and above the 11,901 measured with the trust checks on every episode."""
        latents = 7 * sizes.categoricals * sizes.classes
        per_step = 4 * (latents + sizes.deter + sizes.categoricals * (self.rank + 4) + self.rank)
        per_step += 100 * sizes.channels
        return self.episodes * self.steps * per_step

    def with_overrides(self, overrides: Mapping[str, Any]) -> AuditSettings:
        """Apply a marker's keyword overrides, validated like the options."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"@pytest.mark.{MARKER} got unknown settings {unknown}; valid: {sorted(known)}"
            )
        parsed: dict[str, Any] = {}
        for name, value in overrides.items():
            if name == "checkpoint":
                parsed[name] = str(value)
                continue
            if name == "pomdp" and isinstance(value, bool):  # spelled as on the command line
                value = as_text(value)
            try:
                parsed[name] = rule_of(AuditSettings, name).check(value)
            except ConfigError as error:
                raise ConfigError(f"@pytest.mark.{MARKER}({name}={value!r}): {error}") from None
        return dataclasses.replace(self, **parsed)

    @property
    def pomdp_flag(self) -> bool | None:
        """The POMDP flag, or None for "ask the checkpoint's metadata"."""
        return None if self.pomdp == "auto" else self.pomdp == "true"

    @property
    def split(self) -> tuple[int | None, int | None]:
        """The stochastic split to load the checkpoint with: ``(C, K)``, or ``(None, None)``
        to read it from the checkpoint."""
        if self.categoricals == 0:
            return None, None
        return self.categoricals, self.classes

    def rollouts(self, agent: Any, target: GameTarget) -> Any:
        """The rollouts these settings ask for, of ``agent`` on ``target`` (see
        :meth:`check_agent`): a ``Trajectory``. Imports torch (the rollout layer) when called."""
        from .rollout.rollouts import run_rollouts

        return run_rollouts(
            agent,
            target.spec.name,
            pomdp=target.pomdp,
            episodes=self.episodes,
            steps=self.steps,
            seed=self.seed,
        )

    def explain_config(self) -> ExplainConfig:
        """The explanation these settings ask for (the one conversion of settings to config)."""
        return ExplainConfig(
            rank=self.rank,
            layout=self.layout,
            score=self.score,
            top_k=self.top_k,
            seed=self.seed,
            stability_refits=self.stability_refits,
            trust_episodes=self.trust_episodes,
            skip_steps=self.skip_steps,
            randomization=self.randomization,
            probes=self.probes,
            curves=self.curves,
            decoded=self.decoded,
            imagination=self.imagination,
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


@dataclass(frozen=True)
class RunSettings:
    """How a run works rather than what an audit computes (not in cache keys, not marker
    keywords): the plugin's folders and the torch threads. Checked like :class:`AuditSettings`."""

    threads: int = setting(
        AUTO_THREADS,
        Rule(
            "torch threads per process (each xdist worker is one): auto (= 1, measured fastest on "
            "a 2-core machine) or N",
            _read_threads,
            _THREADS[1],
        ),
    )
    artifacts: str = setting(
        "dreamer-audit-artifacts",
        Rule("directory for PNGs and JSON per test", str, _check_text, command_line=False),
    )
    cache_dir: str = setting(
        "",
        Rule(
            "on-disk explanation cache; default: .pytest_cache/d/dreamer-audit",
            str,
            _check_text,
            command_line=False,
        ),
    )
    baseline_dir: str = setting(
        "",
        Rule(
            "baselines directory; default: dreamer_baselines/ beside each test file",
            str,
            _check_text,
            command_line=False,
        ),
    )

    def __post_init__(self) -> None:
        _check_fields(self)


def _options(owner: type, audit_setting: bool) -> tuple[Option, ...]:
    options = []
    for f in dataclasses.fields(owner):
        rule = f.metadata.get("rule")
        if isinstance(rule, Rule):
            default = "auto" if f.name == "threads" else as_text(f.default)
            options.append(
                Option(f.name, rule.help, rule.parse, default, rule.command_line, audit_setting)
            )
    return tuple(options)


OPTIONS: tuple[Option, ...] = _options(AuditSettings, True) + _options(RunSettings, False)
"""Every setting with a value, derived from the fields of :class:`AuditSettings` and
:class:`RunSettings` (the checkpoint list and the update flag are separate)."""


def marker_help() -> str:
    """The ``dreamer_audit`` marker's line for ``pytest --markers``: every keyword it takes."""
    names = ", ".join(f.name for f in dataclasses.fields(AuditSettings))
    return f"{MARKER}(**settings): override dreamer-audit settings for one test ({names})"
