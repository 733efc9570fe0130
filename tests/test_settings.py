from __future__ import annotations

import pytest

from pytest_dreamer_audit.errors import ConfigError
from pytest_dreamer_audit.settings import OPTIONS, AuditSettings, parse_value


def _option(field: str):  # type: ignore[no-untyped-def]
    return next(o for o in OPTIONS if o.field == field)


def test_every_option_has_a_flag_an_ini_key_and_a_valid_default() -> None:
    names = [o.field for o in OPTIONS]
    assert len(names) == len(set(names))
    for option in OPTIONS:
        assert option.flag == "--dreamer-" + option.field.replace("_", "-")
        assert option.ini == "dreamer_" + option.field
        parse_value(option, option.default)


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        (
            "episodes",
            "zero",
            "--dreamer-episodes / dreamer_episodes: expected a positive integer, got 'zero'",
        ),
        ("seed", "-1", "expected an integer >= 0, got -1"),
        ("device", "cuda:x", "expected auto, cpu, cuda or cuda:N"),
        ("layout", "flat", "expected one of pooled, per_step, got 'flat'"),
    ],
)
def test_parse_errors_name_the_flag_and_ini_key(field: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_value(_option(field), text)


def test_marker_overrides_are_validated() -> None:
    settings = AuditSettings(checkpoint="a.pth")
    changed = settings.with_overrides({"episodes": 3, "pomdp": False, "game": "breakout"})
    assert (changed.episodes, changed.pomdp, changed.game, changed.pomdp_flag) == (
        3,
        "false",
        "breakout",
        False,
    )
    with pytest.raises(ConfigError, match=r"unknown settings \['epochs'\]"):
        settings.with_overrides({"epochs": 1})
    with pytest.raises(
        ConfigError, match=r"mark.dreamer_audit\(rank=0\): expected a positive integer, got 0"
    ):
        settings.with_overrides({"rank": 0})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"episodes": 4097}, "expected at most 4,096, got 4,097"),
        ({"steps": 100_001}, "expected at most 100,000"),
        ({"stability_refits": 1_000_000}, "expected at most 20"),
        ({"top_k": 10**9}, "expected at most 1,000"),
        ({"seed": 4294967296}, "expected at most 4,294,967,295"),
        ({"seed": 4294967295}, "episode seeds run from 4294967295 to 4294967310"),
    ],
)
def test_sizes_and_seeds_are_bounded_up_front(values: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuditSettings(checkpoint="a.pth").with_overrides(values)


def test_memory_is_estimated_against_the_agent() -> None:
    class Reference:
        categoricals, classes, channels, actions, deter = 20, 20, 2, 3, 200

    settings = AuditSettings(checkpoint="a.pth")
    per_step = settings.estimated_bytes(Reference) // (16 * 50)
    # Not below the reference agent's measured peak, at most 30% above: 10,794-10,992 bytes
    # per episode-step, the slope of the process's peak resident set from 16 x 50 to 1024 x 50
    # (benchmarks/memory.md; 11,901 with the replaying trust checks on every episode, 73,147
    # before issue 33 chunked the sanity replays and the scores, 18,646 before the replays
    # recorded only what is read, 14,423 before the samples were kept as class indices and the
    # NMF rows' indices as int32).
    assert per_step == 13_360
    assert 11_901 <= per_step <= 1.3 * 10_794
    big = settings.with_overrides({"episodes": 4096, "steps": 100_000})
    with pytest.raises(ConfigError, match=r"would need about .* GiB .* over the 8 GiB limit"):
        big.check_agent(Reference, "freeway", True)
    assert settings.check_agent(Reference, "freeway", True).spec.name == "freeway"


def test_cache_key_depends_on_content_and_settings_but_not_device() -> None:
    a = AuditSettings(checkpoint="a.pth")
    assert a.key("digest") == AuditSettings(checkpoint="elsewhere/a.pth", device="cpu").key(
        "digest"
    )
    assert a.key("digest") != a.key("other-digest")
    assert a.key("digest") != a.with_overrides({"rank": 4}).key("digest")
    assert a.label == "a"


def test_the_significance_level_is_checked_and_decides_the_claims() -> None:
    by_field = {option.field: option for option in OPTIONS}
    option = by_field["significance"]
    assert parse_value(option, "0.01") == 0.01
    for bad in ("0", "1", "x", "-0.1"):
        with pytest.raises(ConfigError, match="expected a significance level between 0 and 1"):
            parse_value(option, bad)
    settings = AuditSettings(checkpoint="a.pth").with_overrides({"significance": 0.001})
    assert settings.claim_config().level == 0.001
    assert AuditSettings(checkpoint="a.pth").claim_config().level == 0.05
    # A stricter level is another audit: its gallery claims less, so it has its own cache key.
    assert settings.key("d") != AuditSettings(checkpoint="a.pth").key("d")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rank": 0}, r"AuditSettings\.rank: expected a positive integer, got 0"),
        (
            {"layout": "flat"},
            r"AuditSettings\.layout: expected one of pooled, per_step, got 'flat'",
        ),
        ({"episodes": 10**6}, r"AuditSettings\.episodes: expected at most 4,096, got 1,000,000"),
        (
            {"pomdp": "maybe"},
            r"AuditSettings\.pomdp: expected one of auto, true, false, got 'maybe'",
        ),
        (
            {"device": "tpu"},
            r"AuditSettings\.device: expected auto, cpu, cuda or cuda:N, got 'tpu'",
        ),
        ({"episodes": "5"}, r"AuditSettings\.episodes: expected a positive integer, got str '5'"),
        ({"probes": "yes"}, r"AuditSettings\.probes: expected true or false, got 'yes'"),
        ({"significance": 1.0}, r"AuditSettings\.significance: expected a significance level"),
        (
            {"game": "frewway"},
            r"AuditSettings\.game: unknown game 'frewway' \(did you mean 'freeway'\?\); MinAtar has",
        ),
        ({"categoricals": 32}, r"categoricals 32 and classes 0: give both"),
        ({"checkpoint": 3}, r"AuditSettings\.checkpoint: expected a path text, got 3"),
        ({"imagination": (0,)}, r"AuditSettings\.imagination: imagination horizon 0 is outside"),
        ({"imagination": (10, 1)}, r"expected the horizons sorted, got \(10, 1\); use \(1, 10\)"),
        ({"imagination": (50,)}, r"imagination horizon 50 reaches past the 50 rollout steps"),
    ],
)
def test_the_settings_check_every_field_themselves(values: dict[str, object], message: str) -> None:
    """Built in Python (the public class), not only from text: every field is checked where the
    settings are built, with the field's name in the message."""
    with pytest.raises(ConfigError, match=message):
        AuditSettings(**{"checkpoint": "a.pth", **values})  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [" 3", "3 ", "\u0663", "1_000", "+3", "3.0", "0x10", ""])
def test_integers_are_plain_ascii_digits(text: str) -> None:
    with pytest.raises(ConfigError, match="expected a positive integer, got"):
        parse_value(_option("episodes"), text)
    assert parse_value(_option("episodes"), "3") == 3


def test_an_absurd_rank_is_refused_up_front_not_as_memory() -> None:
    with pytest.raises(ConfigError, match="--dreamer-rank / dreamer_rank: expected at most 4,096"):
        parse_value(_option("rank"), str(10**12))


def test_marker_values_keep_their_types() -> None:
    settings = AuditSettings(checkpoint="a.pth")
    with pytest.raises(
        ConfigError,
        match=r"mark\.dreamer_audit\(episodes='5'\): expected a positive integer, got str '5'",
    ):
        settings.with_overrides({"episodes": "5"})
    with pytest.raises(ConfigError, match=r"expected a positive integer, got bool True"):
        settings.with_overrides({"rank": True})
    assert settings.with_overrides({"pomdp": True}).pomdp == "true"  # spelled as on the CLI
    assert settings.with_overrides({"categoricals": 32, "classes": 32}).split == (32, 32)
    assert settings.split == (None, None)


def test_every_default_and_rule_has_one_owner() -> None:
    """The options are the settings' fields; a default shared with the explanation's config is
    the config's (one place), and the marker's help names every keyword."""
    import dataclasses

    from pytest_dreamer_audit.results.config import ClaimConfig, ExplainConfig, NMFConfig
    from pytest_dreamer_audit.settings import RunSettings, marker_help

    audit = {f.name for f in dataclasses.fields(AuditSettings)} - {"checkpoint"}
    run = {f.name for f in dataclasses.fields(RunSettings)}
    assert {o.field for o in OPTIONS} == audit | run
    assert {o.field for o in OPTIONS if o.audit_setting} == audit
    defaults = AuditSettings(checkpoint="a.pth")
    explain = ExplainConfig()
    for name in ("rank", "layout", "score", "top_k", "seed", "stability_refits", "skip_steps",
                 "randomization", "probes", "curves", "decoded", "imagination"):  # fmt: skip
        assert getattr(defaults, name) == getattr(explain, name), name
        assert parse_value(_option(name), _option(name).default) == getattr(explain, name)
    for name in ("rank", "layout", "solver", "init", "max_iter", "tol", "seed"):
        assert getattr(explain, name) == getattr(NMFConfig(), name), name
    assert defaults.significance == ClaimConfig().level
    assert defaults.explain_config() == explain
    for option in OPTIONS:  # the text default parses to the field's default
        owner = AuditSettings if option.audit_setting else RunSettings
        field = next(f for f in dataclasses.fields(owner) if f.name == option.field)
        assert parse_value(option, option.default) == field.default, option.field
    for name in audit | {"checkpoint"}:
        assert name in marker_help()
