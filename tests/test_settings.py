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
    with pytest.raises(ConfigError, match="expected a positive integer, got 0"):
        settings.with_overrides({"rank": 0})


def test_cache_key_depends_on_content_and_settings_but_not_device() -> None:
    a = AuditSettings(checkpoint="a.pth")
    assert a.key("digest") == AuditSettings(checkpoint="elsewhere/a.pth", device="cpu").key(
        "digest"
    )
    assert a.key("digest") != a.key("other-digest")
    assert a.key("digest") != a.with_overrides({"rank": 4}).key("digest")
    assert a.label == "a"
