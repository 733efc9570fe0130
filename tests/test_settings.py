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
    # Not below the reference agent's measured peak (benchmarks/scaling.md), at most 25% above.
    assert 34_904 <= per_step <= 1.25 * 34_904
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
