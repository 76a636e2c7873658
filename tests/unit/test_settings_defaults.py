"""orchestrator/settings/defaults.py: loading and validating the bootstrap defaults file."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SettingsError
from orchestrator.settings.defaults import DEFAULTS_FILE, defaults_path, load_defaults


def _write(directory: Path, text: str, name: str = "defaults.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_loads_with_typed_values() -> None:
    settings = load_defaults(DEFAULTS_FILE)
    assert settings["sentinel.interval"] == 5.0
    assert type(settings["sentinel.interval"]) is float
    assert settings["programs.cron"] is False
    assert settings["programs.web"] is False
    assert type(settings["sentinel.failures"]) is int
    assert type(settings["supervisor.log_level"]) is str
    # Keys that end in a float by intent stay floats even when whole.
    assert type(settings["sentinel.backoff_max"]) is float
    assert all(key.count(".") == 1 for key in settings)


def test_shipped_file_is_the_default_path() -> None:
    assert defaults_path({}) == DEFAULTS_FILE
    assert DEFAULTS_FILE.name == "nua_defaults_settings.toml"
    assert DEFAULTS_FILE.is_file()


def test_nua_defaults_file_selects_the_path(tmp_path: Path) -> None:
    chosen = tmp_path / "mine.toml"
    assert defaults_path({"NUA_DEFAULTS_FILE": str(chosen)}) == chosen
    assert defaults_path({"NUA_DEFAULTS_FILE": ""}) == DEFAULTS_FILE


def test_load_without_a_path_reads_nua_defaults_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "[demo]\nanswer = 42\n")
    monkeypatch.setenv("NUA_DEFAULTS_FILE", str(path))
    assert load_defaults() == {"demo.answer": 42}


def test_nested_sections_flatten_to_dotted_keys(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[a]\nflag = true\nname = "x"\n[a.b]\nratio = 0.5\ncount = -3\n',
    )
    assert load_defaults(path) == {"a.flag": True, "a.name": "x", "a.b.ratio": 0.5, "a.b.count": -3}


def test_invalid_toml_names_the_line_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "[sentinel]\ninterval = 5.0\nfailures = \n")
    with pytest.raises(SettingsError) as info:
        load_defaults(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert "key failures" in message


def test_invalid_toml_without_a_key_still_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "[sentinel]\ninterval = 5.0\n[broken\n")
    with pytest.raises(SettingsError) as info:
        load_defaults(path)
    assert str(info.value).startswith(f"settings file {path}, line 3: ")
    assert "]" in str(info.value)


def test_array_value_is_refused_naming_key_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "[rpc]\nstop_timeout = 10\nhosts = [1, 2]\n")
    with pytest.raises(SettingsError) as info:
        load_defaults(path)
    message = str(info.value)
    assert "line 3" in message
    assert "key rpc.hosts" in message
    assert "list is not a setting value" in message


@pytest.mark.parametrize(
    "literal", ["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27T07:32:00"]
)
def test_date_and_time_values_are_refused(tmp_path: Path, literal: str) -> None:
    path = _write(tmp_path, f"# comment\n[jobs]\nwhen = {literal}\n")
    with pytest.raises(SettingsError) as info:
        load_defaults(path)
    message = str(info.value)
    assert "line 3" in message
    assert "key jobs.when" in message
    assert "not a setting value" in message


def test_inline_table_is_flattened_like_a_section(tmp_path: Path) -> None:
    path = _write(tmp_path, "[a]\nb = { c = 1 }\n")
    assert load_defaults(path) == {"a.b.c": 1}


def test_key_outside_a_section_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "loose = 1\n")
    with pytest.raises(SettingsError, match=r"line 1, key loose: keys are lower-case words"):
        load_defaults(path)


def test_upper_case_key_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "[rpc]\nTimeout = 1\n")
    with pytest.raises(SettingsError, match=r"line 2, key rpc\.Timeout"):
        load_defaults(path)


def test_bad_value_line_is_found_within_its_own_section(tmp_path: Path) -> None:
    # Same shape as the shipped file: log_backups is in [supervisor] and [programs].
    path = _write(tmp_path, "[supervisor]\nlog_backups = 5\n[programs]\nlog_backups = [5]\n")
    with pytest.raises(SettingsError) as info:
        load_defaults(path)
    assert "key programs.log_backups" in str(info.value)
    assert "line 4" in str(info.value)


def test_missing_file_says_it_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(SettingsError, match="does not exist") as info:
        load_defaults(path)
    assert str(path) in str(info.value)


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[a]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SettingsError, match="not UTF-8") as info:
        load_defaults(path)
    assert str(path) in str(info.value)


def test_unreadable_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot be read") as info:
        load_defaults(tmp_path)
    assert str(tmp_path) in str(info.value)


# -- a defaults file must keep to the constraints of its own settings ----------------------


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("[rpc]\nstop_timeout = 10\nthreads = 0\n", 3, "rpc.threads", "0 is not allowed"),
        (
            '[supervisor]\nlog_level = "bogus"\n',
            2,
            "supervisor.log_level",
            '"bogus" is not allowed, it must be one of critical',
        ),
        ("[rpc]\n\nmax_message_bytes = -1\n", 3, "rpc.max_message_bytes", "from 16384"),
        ("[sentinel]\ninterval = nan\n", 2, "sentinel.interval", "a finite number"),
        ('[apps]\nuser = "-o"\n', 2, "apps.user", "a user name"),
    ],
)
def test_a_value_that_breaks_its_constraint_names_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, words: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_defaults(path)
    message = str(info.value)
    assert message.startswith(f"settings file {path}, line {line}, key {key}: ")
    assert words in message


def test_the_ends_of_a_range_out_of_order_name_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "[apps]\nport_min = 30000\nport_max = 20999\n")
    with pytest.raises(SettingsError) as info:
        load_defaults(path)
    assert str(info.value) == (
        f"settings file {path}, line 2, key apps.port_min: 30000 is more than apps.port_max "
        "(20999, line 3); it must be at most apps.port_max"
    )


def test_a_copy_of_the_shipped_file_with_one_bad_value_is_refused(tmp_path: Path) -> None:
    text = DEFAULTS_FILE.read_text(encoding="utf-8").replace("threads = 32", "threads = 0")
    path = _write(tmp_path, text)
    line = text.splitlines().index("threads = 0") + 1
    with pytest.raises(SettingsError, match=rf"line {line}, key rpc\.threads: 0 is not allowed"):
        load_defaults(path)
