"""orchestrator/apps/config.py: every key of nua-config.toml, its default and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.apps.config import (
    CONFIG_NAME,
    MAX_CONFIG_BYTES,
    AppConfig,
    ConfigError,
    load_config,
    validate,
    validate_text,
)
from orchestrator.errors import ExitCode, NuaError

SAMPLES = Path(__file__).resolve().parents[1] / "apps"

META = '[metadata]\nid = "hello"\nversion = "1.0.0"\n'
RUN = '[run]\ncommand = "python3 -m http.server $NUA_PORT"\n'
MINIMAL = META + RUN

# The issue's example, verbatim.
FULL = """
[metadata]
id = "hello"                  # required, lowercase letters, digits, dashes
version = "1.0.0"             # required
title = "Hello"
[build]
script = "build.sh"           # optional; runs once per release, with a timeout
[run]
command = "python3 -m http.server $NUA_PORT"   # required
env = { GREETING = "hi" }
[port.web]                    # named ports, allocated from a range in settings
[healthcheck]
http = "/"                    # or tcp; ready when it answers
timeout = 30
[data]                        # a persistent folder, kept across upgrades
"""


def _app(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / CONFIG_NAME).write_text(text, encoding="utf-8")
    for name, content in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def _error(text: str, folder: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate_text(text, "app/nua-config.toml", folder)
    return info.value


# -- valid configs ------------------------------------------------------------------------------


def test_the_issues_example_loads_with_every_value(tmp_path: Path) -> None:
    folder = _app(tmp_path, FULL, {"build.sh": "echo built\n"})
    config = load_config(folder)
    assert config.id == "hello"
    assert config.version == "1.0.0"
    assert config.title == "Hello"
    assert config.build.script == "build.sh"
    assert config.build.timeout == 600.0
    assert config.run.command == "python3 -m http.server $NUA_PORT"
    assert dict(config.run.env) == {"GREETING": "hi"}
    assert config.run.stop_signal == "TERM"
    assert config.run.stop_timeout is None
    assert [(p.name, p.protocol, p.variable) for p in config.ports] == [
        ("web", "tcp", "NUA_PORT_WEB")
    ]
    assert config.primary_port is not None and config.primary_port.name == "web"
    assert config.healthcheck is not None
    assert (config.healthcheck.kind, config.healthcheck.port, config.healthcheck.path) == (
        "http",
        "web",
        "/",
    )
    assert config.healthcheck.timeout == 30.0
    assert config.healthcheck.interval is None
    assert config.data is True


def test_a_minimal_config_gets_every_default() -> None:
    config = validate_text(MINIMAL)
    assert config.title == "hello"
    assert config.build.script is None
    assert config.build.timeout == 600.0
    assert dict(config.run.env) == {}
    assert config.run.stop_signal == "TERM"
    assert config.ports == ()
    assert config.primary_port is None
    assert config.healthcheck is None
    assert config.data is False


def test_every_optional_key_set() -> None:
    config = validate_text(
        META
        + 'title = "Hello, world"\n'
        + "[build]\ntimeout = 2.5\n"
        + RUN
        + 'stop_signal = "SIGINT"\nstop_timeout = 60\n'
        + "[port.admin]\n"
        + '[port.web]\nprotocol = "tcp"\n'
        + '[healthcheck]\nhttp = "/health?full=1"\nport = "admin"\ntimeout = 5\ninterval = 2\n'
    )
    assert config.title == "Hello, world"
    assert config.build.timeout == 2.5
    assert config.run.stop_signal == "INT"
    assert config.run.stop_timeout == 60.0
    assert config.healthcheck is not None
    assert config.healthcheck.port == "admin"
    assert config.healthcheck.path == "/health?full=1"
    assert (config.healthcheck.timeout, config.healthcheck.interval) == (5.0, 2.0)


def test_config_is_frozen() -> None:
    config = validate_text(FULL)
    with pytest.raises(AttributeError):
        config.metadata.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.run.env["X"] = "y"  # type: ignore[index]


def test_as_dict_is_plain_json_with_every_default() -> None:
    data = validate_text(FULL).as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["primary_port"] == "web"
    assert data["health"] == {
        "kind": "http",
        "port": "web",
        "path": "/",
        "timeout": 30.0,
        "interval": None,
    }
    assert data["build"] == {"script": "build.sh", "timeout": 600.0}
    assert data["env"] == {"GREETING": "hi"}
    assert data["data"] is True


@pytest.mark.parametrize(
    ("ports", "primary"),
    [
        ("[port.web]\n", "web"),
        ("[port.api]\n", "api"),
        ("[port.admin]\n[port.web]\n", "web"),  # `web` wins wherever it is
        ("[port.admin]\n[port.api]\n", "admin"),  # else the first in the file
        ("[port.api]\n[port.admin]\n", "api"),
    ],
)
def test_the_primary_port_is_web_else_the_first(ports: str, primary: str) -> None:
    config = validate_text(MINIMAL + ports + '[healthcheck]\nhttp = "/"\n')
    assert config.primary_port is not None and config.primary_port.name == primary
    # An http health check asks the primary port unless it names one.
    assert config.healthcheck is not None and config.healthcheck.port == primary


def test_tcp_health_check_names_a_port() -> None:
    config = validate_text(MINIMAL + '[port.web]\n[port.db]\n[healthcheck]\ntcp = "db"\n')
    assert config.healthcheck is not None
    assert (config.healthcheck.kind, config.healthcheck.port) == ("tcp", "db")
    assert config.healthcheck.path is None


@pytest.mark.parametrize("version", ["1", "1.0", "1.0.0", "2.10.3.4", "1.0.0-rc.1", "1.2+b.5"])
def test_semver_like_versions_are_accepted(version: str) -> None:
    text = MINIMAL.replace('"1.0.0"', json.dumps(version))
    assert validate_text(text).version == version


@pytest.mark.parametrize("app_id", ["a", "hello", "my-app-2", "a" * 63])
def test_valid_ids(app_id: str) -> None:
    assert validate_text(MINIMAL.replace('"hello"', json.dumps(app_id))).id == app_id


# -- invalid configs: each names its key --------------------------------------------------------


BAD = [
    # [metadata]
    (RUN, "metadata", "required"),
    ('metadata = "x"\n' + RUN, "metadata", "must be a table"),
    ('[metadata]\nversion = "1.0"\n' + RUN, "metadata.id", "required"),
    ('[metadata]\nid = "hello"\n' + RUN, "metadata.version", "required"),
    (MINIMAL.replace('"hello"', '"Hello"'), "metadata.id", "lowercase"),
    (MINIMAL.replace('"hello"', '"1app"'), "metadata.id", "starting with a letter"),
    (MINIMAL.replace('"hello"', '"app-"'), "metadata.id", "not ending with a dash"),
    (MINIMAL.replace('"hello"', '"my_app"'), "metadata.id", "dashes"),
    (MINIMAL.replace('"hello"', '"' + "a" * 64 + '"'), "metadata.id", "1-63"),
    (MINIMAL.replace('"hello"', '""'), "metadata.id", "must not be empty"),
    (MINIMAL.replace('"hello"', "7"), "metadata.id", "must be a string, not an integer"),
    (MINIMAL.replace('"1.0.0"', '"v1.0"'), "metadata.version", "not a version"),
    (MINIMAL.replace('"1.0.0"', '"01.0"'), "metadata.version", "not a version"),
    (MINIMAL.replace('"1.0.0"', '"1.0rc1"'), "metadata.version", "not a version"),
    (MINIMAL.replace('"1.0.0"', '"1.2.3.4.5"'), "metadata.version", "not a version"),
    (MINIMAL.replace('"1.0.0"', '"1.0 beta"'), "metadata.version", "not a version"),
    (MINIMAL.replace('"1.0.0"', "1.0"), "metadata.version", "must be a string, not a float"),
    (META + 'title = "a\\nb"\n' + RUN, "metadata.title", "one line"),
    (META + f'title = "{"t" * 101}"\n' + RUN, "metadata.title", "longer than 100"),
    (META + 'description = "x"\n' + RUN, "metadata.description", "unknown key"),
    # [build]
    (MINIMAL + '[build]\nscript = "/bin/build.sh"\n', "build.script", "not absolute"),
    (MINIMAL + '[build]\nscript = "../build.sh"\n', "build.script", "'..'"),
    (MINIMAL + '[build]\nscript = "a/../../b.sh"\n', "build.script", "'..'"),
    (MINIMAL + '[build]\nscript = "./"\n', "build.script", "does not name a file"),
    (MINIMAL + "[build]\nscript = true\n", "build.script", "not a boolean"),
    (MINIMAL + "[build]\ntimeout = 0\n", "build.timeout", "more than 0"),
    (MINIMAL + "[build]\ntimeout = -5\n", "build.timeout", "more than 0"),
    (MINIMAL + "[build]\ntimeout = nan\n", "build.timeout", "more than 0"),
    (MINIMAL + "[build]\ntimeout = inf\n", "build.timeout", "more than 0"),
    (MINIMAL + "[build]\ntimeout = 100000\n", "build.timeout", "at most 86400"),
    (MINIMAL + '[build]\ntimeout = "60"\n', "build.timeout", "not a string"),
    (MINIMAL + "[build]\ntimeout = true\n", "build.timeout", "not a boolean"),
    (MINIMAL + '[build]\nscrpt = "b.sh"\n', "build.scrpt", "did you mean 'script'?"),
    # [run]
    (META, "run", "required"),
    (META + "[run]\n", "run.command", "required"),
    (META + '[run]\ncommand = ""\n', "run.command", "must not be empty"),
    (META + '[run]\ncommand = "   "\n', "run.command", "blank"),
    (META + '[run]\ncommand = ["python3", "app.py"]\n', "run.command", "not an array"),
    (META + '[run]\ncommand = "a\\nb"\n', "run.command", "one line"),
    (MINIMAL + 'env = "A=1"\n', "run.env", "must be a table"),
    (MINIMAL + "env = { PORT = 80 }\n", "run.env.PORT", "not an integer (quote it)"),
    (MINIMAL + 'env = { NUA_PORT = "1" }\n', "run.env.NUA_PORT", "reserved"),
    (MINIMAL + 'env = { NUA_SECRET = "1" }\n', "run.env.NUA_SECRET", "reserved"),
    (MINIMAL + 'env = { 1X = "1" }\n', "run.env.1X", "not an environment variable name"),
    (MINIMAL + 'env = { "A-B" = "1" }\n', "run.env.A-B", "not an environment variable name"),
    (MINIMAL + 'env = { "A B" = "1" }\n', 'run.env."A B"', "not an environment variable"),
    (MINIMAL + 'env = { A = "x\\u0000y" }\n', "run.env.A", "NUL"),
    (MINIMAL + 'stop_signal = "STOP"\n', "run.stop_signal", "not one of TERM"),
    (MINIMAL + "stop_signal = 15\n", "run.stop_signal", "not an integer"),
    (MINIMAL + "stop_timeout = 0\n", "run.stop_timeout", "more than 0"),
    (MINIMAL + 'cmd = "x"\n', "run.cmd", "unknown key"),
    # [port.NAME]
    ("port = 8080\n" + MINIMAL, "port", "must be tables [port.NAME]"),
    (MINIMAL + "[port]\nweb = 8080\n", "port.web", "must be a table [port.web]"),
    (MINIMAL + "[port.Web]\n", "port.Web", "lowercase"),
    (MINIMAL + "[port.web-admin]\n", "port.web-admin", "NUA_PORT_<NAME>"),
    (MINIMAL + "[port.1st]\n", "port.1st", "starting with a letter"),
    (MINIMAL + '[port."we b"]\n', 'port."we b"', "port name"),
    (MINIMAL + '[port.web]\nprotocol = "udp"\n', "port.web.protocol", "only tcp"),
    (MINIMAL + "[port.web]\nprotocol = 6\n", "port.web.protocol", "not an integer"),
    (MINIMAL + "[port.web]\nnumber = 8080\n", "port.web.number", "unknown key"),
    (MINIMAL + "".join(f"[port.p{i}]\n" for i in range(17)), "port", "at most 16"),
    # [healthcheck]
    (MINIMAL + "[port.web]\n[healthcheck]\n", "healthcheck", "set one of http"),
    (MINIMAL + "[port.web]\n[healthcheck]\ntimeout = 3\n", "healthcheck", "set one of"),
    (
        MINIMAL + '[port.web]\n[healthcheck]\nhttp = "/"\ntcp = "web"\n',
        "healthcheck",
        "not both",
    ),
    (MINIMAL + '[healthcheck]\nhttp = "/"\n', "healthcheck.http", "needs a port"),
    (MINIMAL + '[port.web]\n[healthcheck]\nhttp = "health"\n', "healthcheck.http", "start"),
    (MINIMAL + '[port.web]\n[healthcheck]\nhttp = "/a b"\n', "healthcheck.http", "no spaces"),
    (MINIMAL + '[port.web]\n[healthcheck]\ntcp = "db"\n', "healthcheck.tcp", "declared: web"),
    (MINIMAL + '[healthcheck]\ntcp = "web"\n', "healthcheck.tcp", "declares no [port.NAME]"),
    (
        MINIMAL + '[port.web]\n[healthcheck]\nhttp = "/"\nport = "db"\n',
        "healthcheck.port",
        "no port 'db'",
    ),
    (
        MINIMAL + '[port.web]\n[healthcheck]\ntcp = "web"\nport = "web"\n',
        "healthcheck.port",
        "only with http",
    ),
    (
        MINIMAL + '[port.web]\n[healthcheck]\nhttp = "/"\ntimeout = 0\n',
        "healthcheck.timeout",
        "more than 0",
    ),
    (
        MINIMAL + '[port.web]\n[healthcheck]\nhttp = "/"\ninterval = -1\n',
        "healthcheck.interval",
        "more than 0",
    ),
    (
        MINIMAL + '[port.web]\n[healthcheck]\nhtp = "/"\n',
        "healthcheck.htp",
        "did you mean 'http'?",
    ),
    # [data]
    ("data = true\n" + MINIMAL, "data", "must be a table [data]"),
    (MINIMAL + '[data]\npath = "/srv"\n', "data.path", "[data] takes no keys"),
    # unknown tables
    (MINIMAL + "[ports.web]\n", "ports", "unknown table, did you mean 'port'?"),
    (MINIMAL + "[health]\n", "health", "unknown table"),
    (MINIMAL + 'name = "x"\n', "run.name", "unknown key"),  # after [run]: a key of run
    ('name = "x"\n' + MINIMAL, "name", "unknown table"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_a_bad_value_is_refused_naming_its_key(text: str, key: str, fragment: str) -> None:
    error = _error(text)
    assert error.field == key
    assert error.key == key
    assert f"{key}: " in str(error)
    assert fragment in str(error)
    assert str(error).startswith("app/nua-config.toml: ")
    assert "\n" not in str(error)


def test_every_problem_is_reported_at_once_on_one_line() -> None:
    error = _error(
        '[metadata]\nid = "Bad"\n[run]\ncommand = ""\nenv = { NUA_X = "1" }\n[port.web]\n'
        'protocol = "udp"\n[healthcheck]\ntcp = "nope"\n[extra]\n'
    )
    fields = [p.field for p in error.problems]
    assert fields == [
        "extra",
        "metadata.id",
        "metadata.version",
        "run.command",
        "run.env.NUA_X",
        "port.web.protocol",
        "healthcheck.tcp",
    ]
    assert error.field == "extra"
    message = str(error)
    assert message.startswith("app/nua-config.toml: 7 errors: extra: unknown table")
    assert "\n" not in message
    for field in fields:
        assert f"{field}: " in message


def test_a_toml_syntax_error_names_line_and_column() -> None:
    error = _error(META + "[run]\ncommand = python3\n")
    assert error.field is None
    assert "invalid TOML" in str(error)
    assert "line 5, column 11" in str(error)
    assert str(error).startswith("app/nua-config.toml: ")


def test_a_duplicate_key_is_a_syntax_error() -> None:
    assert "line 3" in str(_error('[metadata]\nid = "a"\nid = "b"\n'))


def test_config_error_is_a_nua_error() -> None:
    error = _error(RUN)
    assert isinstance(error, NuaError)
    assert error.exit_code == ExitCode.ERROR


def test_validate_takes_parsed_data() -> None:
    config = validate({"metadata": {"id": "x", "version": "1"}, "run": {"command": "true"}})
    assert isinstance(config, AppConfig)
    with pytest.raises(ConfigError, match=r"^src: metadata\.id: required$"):
        validate({"metadata": {"version": "1"}, "run": {"command": "true"}}, "src")


# -- against a folder ---------------------------------------------------------------------------


def test_build_script_must_exist_in_the_folder(tmp_path: Path) -> None:
    folder = _app(tmp_path, FULL)
    with pytest.raises(ConfigError, match=r"build\.script: 'build\.sh': no such file") as info:
        load_config(folder)
    assert info.value.field == "build.script"
    assert str(folder / CONFIG_NAME) in str(info.value)
    # Without a folder only the form is checked.
    assert validate_text(FULL).build.script == "build.sh"


def test_build_script_in_a_subfolder(tmp_path: Path) -> None:
    folder = _app(
        tmp_path,
        FULL.replace('"build.sh"', '"./scripts/build.sh"'),
        {"scripts/build.sh": "true\n"},
    )
    assert load_config(folder).build.script == "./scripts/build.sh"


def test_build_script_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    folder = _app(tmp_path, FULL)
    (folder / "build.sh").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(folder)


def test_build_script_through_a_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.sh"
    outside.write_text("true\n")
    folder = _app(tmp_path, FULL)
    (folder / "build.sh").symlink_to(outside)
    with pytest.raises(ConfigError, match="leads outside the app folder") as info:
        load_config(folder)
    assert info.value.field == "build.script"


def test_build_script_through_a_symlink_inside_is_fine(tmp_path: Path) -> None:
    folder = _app(tmp_path, FULL, {"real/build.sh": "true\n"})
    (folder / "build.sh").symlink_to("real/build.sh")
    assert load_config(folder).build.script == "build.sh"


def test_a_folder_without_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"no {CONFIG_NAME}"):
        load_config(tmp_path)


def test_an_oversized_config_is_refused_before_parsing(tmp_path: Path) -> None:
    folder = _app(tmp_path, MINIMAL + "#" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(folder)


def test_a_config_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    folder = _app(tmp_path, MINIMAL)
    (folder / CONFIG_NAME).write_bytes(MINIMAL.encode() + b"# \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(folder)


def test_an_unreadable_config_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    (folder / CONFIG_NAME).mkdir(parents=True)
    with pytest.raises(ConfigError, match="cannot be read: Is a directory"):
        load_config(folder)


# -- the sample apps ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hello", "build-fails", "crashes-at-start", "never-healthy"])
def test_each_sample_app_config_is_valid(name: str) -> None:
    config = load_config(SAMPLES / name)
    assert config.id == name
    assert config.primary_port is not None


def test_the_sample_without_a_health_check_has_neither_check_nor_port() -> None:
    config = load_config(SAMPLES / "no-healthcheck")
    assert config.id == "no-healthcheck"
    assert config.healthcheck is None and config.ports == ()
    assert config.as_dict()["health"] is None


def test_the_hello_sample_is_the_readme_example() -> None:
    config = load_config(SAMPLES / "hello")
    assert config.healthcheck is not None and config.healthcheck.path == "/health"
    assert config.data
    assert "NUA_PORT" in config.run.command
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert (SAMPLES / "hello" / CONFIG_NAME).read_text().strip() in readme
