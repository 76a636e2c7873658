"""orchestrator/settings/overrides.py and effective.py: NUA_* overrides for one run."""

from __future__ import annotations

import pytest

from orchestrator.errors import SettingsError
from orchestrator.settings.defaults import DEFAULTS_FILE, SettingValue, load_defaults
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


# -- constraints: an override outside what its setting allows stops the program -----------

SHIPPED = load_defaults(DEFAULTS_FILE)


@pytest.mark.parametrize(
    ("var", "raw", "allowed"),
    [
        ("NUA_RPC_THREADS", "0", "from 1 to 1024"),
        ("NUA_RPC_MAX_MESSAGE_BYTES", "-1", "from 16384 to"),
        ("NUA_RPC_MAX_BATCH", "0", "from 1 to 100000"),
        ("NUA_SUPERVISOR_LOG_LEVEL", "bogus", "one of critical, error, warn, info"),
        ("NUA_SENTINEL_INTERVAL", "nan", "a finite number"),
        ("NUA_RPC_IDEMPOTENCY_HOURS", "1e999", "a finite number"),
        ("NUA_SUPERVISOR_EXECUTABLE", "bin/supervisord", "an absolute path"),
    ],
)
def test_an_override_outside_its_range_is_refused_naming_the_variable(
    var: str, raw: str, allowed: str
) -> None:
    with pytest.raises(SettingsError) as info:
        env_overrides(SHIPPED, {var: raw})
    message = str(info.value)
    assert message.startswith(f"{var}={raw!r}: it must be ")
    assert allowed in message
    assert "\n" not in message
    key = next(k for k in SHIPPED if env_name(k) == var)
    assert message.endswith(f"(setting {key})")


def test_an_override_at_the_edge_of_its_range_is_taken() -> None:
    found, _ = env_overrides(SHIPPED, {"NUA_RPC_THREADS": "1", "NUA_SUPERVISOR_LOG_LEVEL": "warn"})
    assert found == {"rpc.threads": 1, "supervisor.log_level": "warn"}


def test_an_override_that_crosses_the_other_end_of_a_range_is_refused() -> None:
    stored = {"apps.port_min": 20000, "apps.port_max": 20999}
    with pytest.raises(SettingsError) as info:
        effective_settings(stored, SHIPPED, {"NUA_APPS_PORT_MIN": "21000"})
    assert str(info.value) == (
        "NUA_APPS_PORT_MIN='21000': it must be at most apps.port_max (20999) "
        "(setting apps.port_min)"
    )
    # Both ends moved together is fine.
    eff = effective_settings(
        stored, SHIPPED, {"NUA_APPS_PORT_MIN": "30000", "NUA_APPS_PORT_MAX": "30000"}
    )
    assert (eff["apps.port_min"], eff["apps.port_max"]) == (30000, 30000)


def test_a_stored_value_this_release_does_not_allow_gives_way_to_the_default() -> None:
    # Stored before settings.set checked ranges: refusing to start would lock the
    # operator out (nua needs a running worker to change it).
    stored = {"rpc.threads": 0, "supervisor.log_level": "bogus", "rpc.max_batch": 50}
    eff = effective_settings(stored, SHIPPED, {"NUA_SUPERVISOR_LOG_LEVEL": "debug"})
    assert eff["rpc.threads"] == SHIPPED["rpc.threads"]
    assert eff["supervisor.log_level"] == "debug"  # the override still applies
    assert eff["rpc.max_batch"] == 50
    assert eff.refused_stored == {"rpc.threads": 0, "supervisor.log_level": "bogus"}
    warnings = eff.refused_warnings()
    assert warnings[0] == (
        "warning: the stored rpc.threads = 0 is not allowed (it must be from 1 to 1024); "
        f"this run uses {SHIPPED['rpc.threads']} instead: fix it with "
        "`nua settings set rpc.threads VALUE` or `nua settings reset rpc.threads`"
    )
    assert warnings[1].startswith('warning: the stored supervisor.log_level = "bogus"')
    assert 'this run uses "debug" instead' in warnings[1]
