"""orchestrator/settings/overrides.py and effective.py: NUA_* overrides for one run."""

from __future__ import annotations

import pytest

from orchestrator.errors import SettingsError
from orchestrator.settings.defaults import SettingValue
from orchestrator.settings.effective import effective_settings
from orchestrator.settings.overrides import env_name, env_overrides, parse_override

KNOWN: dict[str, SettingValue] = {
    "sentinel.interval": 5.0,
    "sentinel.failures": 3,
    "programs.cron": False,
    "supervisor.log_level": "info",
}


@pytest.mark.parametrize(
    ("key", "var"),
    [
        ("sentinel.interval", "NUA_SENTINEL_INTERVAL"),
        ("programs.cron", "NUA_PROGRAMS_CRON"),
        ("supervisor.log_max_bytes", "NUA_SUPERVISOR_LOG_MAX_BYTES"),
        ("a.b.c", "NUA_A_B_C"),
    ],
)
def test_env_name(key: str, var: str) -> None:
    assert env_name(key) == var


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "Yes", "on", " true "])
def test_parse_true(raw: str) -> None:
    assert parse_override("programs.cron", raw, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "OFF", "  0\n"])
def test_parse_false(raw: str) -> None:
    assert parse_override("programs.cron", raw, True) is False


def test_parse_int() -> None:
    value = parse_override("sentinel.failures", " 7 ", 3)
    assert value == 7
    assert type(value) is int
    assert parse_override("sentinel.failures", "-2", 3) == -2


def test_parse_float_keeps_the_float_type() -> None:
    value = parse_override("sentinel.interval", "3", 5.0)
    assert value == 3.0
    assert type(value) is float
    assert parse_override("sentinel.interval", "0.25", 5.0) == 0.25


def test_parse_str_is_taken_verbatim() -> None:
    assert parse_override("supervisor.log_level", " debug ", "info") == " debug "
    assert parse_override("supervisor.log_level", "", "info") == ""


@pytest.mark.parametrize(
    ("key", "raw", "default", "expected"),
    [
        ("programs.cron", "maybe", False, "a boolean"),
        ("programs.cron", "", False, "a boolean"),
        ("sentinel.failures", "many", 3, "an integer"),
        ("sentinel.failures", "2.5", 3, "an integer"),
        ("sentinel.interval", "soon", 5.0, "a number"),
    ],
)
def test_wrong_value_names_the_variable_and_the_setting(
    key: str, raw: str, default: SettingValue, expected: str
) -> None:
    with pytest.raises(SettingsError) as info:
        parse_override(key, raw, default)
    message = str(info.value)
    assert message.startswith(f"{env_name(key)}={raw!r}: ")
    assert expected in message
    assert f"(setting {key})" in message


def test_env_overrides_finds_known_variables() -> None:
    found, unknown = env_overrides(
        KNOWN,
        {
            "NUA_SENTINEL_INTERVAL": "1.5",
            "NUA_PROGRAMS_CRON": "yes",
            "PATH": "/usr/bin",
            "HOME": "/root",
        },
    )
    assert found == {"sentinel.interval": 1.5, "programs.cron": True}
    assert unknown == []


def test_unknown_nua_variables_are_reported_sorted() -> None:
    _, unknown = env_overrides(
        KNOWN,
        {"NUA_SENTINEL_INTERVALL": "1", "NUA_ZZZ": "x", "NUA_AAA": "y", "XNUA_FOO": "z"},
    )
    assert unknown == ["NUA_AAA", "NUA_SENTINEL_INTERVALL", "NUA_ZZZ"]


@pytest.mark.parametrize(
    "var", ["NUA_HOME", "NUA_DEFAULTS_FILE", "NUA_DATABASE_URL", "NUA_RUN_TOKEN", "NUA_VENV"]
)
def test_nua_variables_that_are_not_settings_are_not_reported(var: str) -> None:
    found, unknown = env_overrides(KNOWN, {var: "/somewhere"})
    assert found == {}
    assert unknown == []


def test_env_overrides_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUA_SENTINEL_FAILURES", "9")
    found, _ = env_overrides(KNOWN)
    assert found["sentinel.failures"] == 9


def test_a_wrong_override_stops_env_overrides() -> None:
    with pytest.raises(SettingsError, match="NUA_SENTINEL_FAILURES"):
        env_overrides(KNOWN, {"NUA_SENTINEL_FAILURES": "x"})


def test_effective_settings_precedence_defaults_stored_env() -> None:
    defaults: dict[str, SettingValue] = {"a.x": 1, "a.y": 2, "a.z": 3}
    stored = {"a.y": 20, "a.z": 30}
    eff = effective_settings(stored, defaults, {"NUA_A_Z": "300"})
    assert eff.values == {"a.x": 1, "a.y": 20, "a.z": 300}
    assert eff.overridden == {"a.z": 300}
    assert eff.unknown_env == []
    assert eff["a.y"] == 20
    assert eff.get("a.missing", "fallback") == "fallback"


def test_effective_settings_reports_unknown_variables() -> None:
    eff = effective_settings({}, {"a.x": 1}, {"NUA_A_XX": "1", "NUA_HOME": "/h"})
    assert eff.unknown_env == ["NUA_A_XX"]
    assert eff.values == {"a.x": 1}


def test_env_override_is_parsed_with_the_default_type() -> None:
    eff = effective_settings({"a.f": 2.5}, {"a.f": 1.0}, {"NUA_A_F": "4"})
    assert eff["a.f"] == 4.0
    assert type(eff["a.f"]) is float


def test_effective_settings_without_environment_keeps_stored_values() -> None:
    eff = effective_settings({"a.x": 10}, {"a.x": 1, "a.y": 2}, {})
    assert eff.values == {"a.x": 10, "a.y": 2}
    assert eff.overridden == {}
