"""orchestrator/supervisor/config.py: rendering supervisord.conf from its template."""

from __future__ import annotations

import configparser
import shlex
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ServerOptions

from orchestrator import resources
from orchestrator.errors import SettingsError
from orchestrator.host.locations import Locations, resolve
from orchestrator.settings.defaults import DEFAULTS_FILE, load_defaults
from orchestrator.supervisor.config import RenderedConfig, render, write

TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - a run token, not a secret
PYTHON = "/opt/nua/bin/python3"


@pytest.fixture(scope="module")
def template() -> str:
    return resources.supervisor_template().read_text(encoding="utf-8")


@pytest.fixture
def settings() -> dict[str, Any]:
    return dict(load_defaults(DEFAULTS_FILE))


@pytest.fixture
def where(short_home: Path) -> Locations:
    return resolve(short_home, environ={})


def _parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=None)
    parser.read_string(text)
    return parser


def _supervisor_parse(path: Path, rendered: RenderedConfig) -> ServerOptions:
    """Read `rendered` the way supervisord reads its config."""
    path.write_text(rendered.text, encoding="utf-8")
    opts = ServerOptions()
    opts.configfile = str(path)
    opts.process_config(do_usage=False)
    return opts


def _programs(opts: ServerOptions) -> dict[str, Any]:
    return {
        f"{group.name}:{pc.name}": pc
        for group in opts.process_group_configs
        for pc in group.process_configs
    }


def test_renders_the_shipped_template_with_the_shipped_defaults(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    rendered = render(template, where, settings, TOKEN, python=PYTHON)
    assert rendered.programs == ("rpc", "sentinel")
    # Only the header comment may mention ${...}: every placeholder was filled in.
    assert "$" not in rendered.text.split("\n[", 1)[1]
    parser = _parse(rendered.text)
    assert parser.get("group:nua", "programs") == "rpc,sentinel"
    assert parser.get("unix_http_server", "file") == str(where.supervisor_socket)
    assert parser.get("unix_http_server", "chmod") == "0700"
    assert parser.get("supervisord", "umask") == "077"
    assert parser.get("supervisord", "pidfile") == str(where.supervisor_pidfile)
    assert parser.get("supervisord", "logfile") == f"{where.logs}/supervisord.log"
    assert parser.get("supervisord", "directory") == str(where.runtime)
    assert parser.get("supervisorctl", "serverurl") == f"unix://{where.supervisor_socket}"
    assert parser.get("program:rpc", "command") == f"{PYTHON} -m orchestrator.rpc.worker"
    assert parser.get("program:rpc", "stopwaitsecs") == str(settings["rpc.stop_timeout"])
    assert parser.get("program:rpc", "stdout_logfile") == f"{where.logs}/rpc.log"


def test_program_sections_stop_and_kill_as_a_group(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    parser = _parse(render(template, where, settings, TOKEN, python=PYTHON).text)
    programs = [s for s in parser.sections() if s.startswith("program:")]
    assert programs == ["program:rpc", "program:sentinel"]
    for section in programs:
        assert parser.get(section, "stopasgroup") == "true", section
        assert parser.get(section, "killasgroup") == "true", section
        assert parser.get(section, "autorestart") == "true", section
        assert parser.get(section, "startsecs") == str(settings["programs.start_seconds"])
        assert parser.get(section, "startretries") == str(settings["programs.start_retries"])


def test_settings_reach_the_sentinel_command(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    settings["sentinel.interval"] = 0.5
    settings["sentinel.failures"] = 9
    parser = _parse(render(template, where, settings, TOKEN, python=PYTHON).text)
    argv = shlex.split(parser.get("program:sentinel", "command"))
    assert argv[:3] == [PYTHON, "-m", "orchestrator.sentinel"]
    assert argv[argv.index("--interval") + 1] == "0.5"
    assert argv[argv.index("--failures") + 1] == "9"


def test_environment_line_carries_run_token_and_home(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    parser = _parse(render(template, where, settings, TOKEN, python=PYTHON).text)
    assert parser.get("supervisord", "environment") == (
        f'NUA_RUN_TOKEN="{TOKEN}",NUA_HOME="{where.home}"'
    )


def test_environment_line_has_no_home_without_one(template: str, settings: dict[str, Any]) -> None:
    system = Locations(
        data=Path("/var/lib/nua"),
        runtime=Path("/run/nua"),
        logs=Path("/var/log/nua"),
        config=Path("/etc/nua"),
    )
    parser = _parse(render(template, system, settings, TOKEN, python=PYTHON).text)
    assert parser.get("supervisord", "environment") == f'NUA_RUN_TOKEN="{TOKEN}"'


@pytest.mark.parametrize("name", ["50%off", 'say"hi', "back\\slash"])
def test_a_location_supervisord_cannot_carry_is_refused(
    template: str, short_home: Path, settings: dict[str, Any], name: str
) -> None:
    """supervisord expands % twice in log paths and has no quoting for environment=."""
    where = resolve(short_home / name, environ={})
    with pytest.raises(SettingsError, match="supervisord cannot carry"):
        render(template, where, settings, TOKEN, python=PYTHON)


def test_percent_in_a_setting_is_doubled(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    settings["programs.log_max_bytes"] = "10%MB"
    parser = _parse(render(template, where, settings, TOKEN, python=PYTHON).text)
    assert parser.get("program:rpc", "stdout_logfile_maxbytes") == "10%%MB"


def test_python_with_a_space_is_quoted(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    parser = _parse(render(template, where, settings, TOKEN, python="/opt/my py/python").text)
    assert shlex.split(parser.get("program:rpc", "command"))[0] == "/opt/my py/python"


def test_optional_programs_are_absent_by_default(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    rendered = render(template, where, settings, TOKEN, python=PYTHON)
    assert "[program:cron]" not in rendered.text
    assert "[program:web]" not in rendered.text
    assert "orchestrator.cron" not in rendered.text


def test_enabled_optional_program_is_rendered_and_grouped(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    settings["programs.cron"] = True
    asked: list[str] = []

    def available(name: str) -> bool:
        asked.append(name)
        return True

    rendered = render(template, where, settings, TOKEN, python=PYTHON, program_available=available)
    assert asked == ["cron"]
    assert rendered.programs == ("rpc", "sentinel", "cron")
    parser = _parse(rendered.text)
    assert parser.get("group:nua", "programs") == "rpc,sentinel,cron"
    assert parser.get("program:cron", "command") == f"{PYTHON} -m orchestrator.cron"
    assert parser.get("program:cron", "stopasgroup") == "true"
    assert not parser.has_section("program:web")


def test_optional_program_needs_a_true_boolean(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    settings["programs.web"] = "true"
    rendered = render(
        template, where, settings, TOKEN, python=PYTHON, program_available=lambda n: True
    )
    assert "web" not in rendered.programs


def test_enabled_program_without_its_module_is_refused(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    settings["programs.cron"] = True
    with pytest.raises(SettingsError) as info:
        render(template, where, settings, TOKEN, python=PYTHON)
    message = str(info.value)
    assert "programs.cron" in message
    assert "orchestrator.cron" in message


def test_unknown_placeholder_names_its_line(where: Locations, settings: dict[str, Any]) -> None:
    template = (
        "[supervisord]\n"
        "logfile = ${log_dir}/x.log\n"
        "[program:rpc]\n"
        "command = ${python} -m x\n"
        "[program:sentinel]\n"
        "command = ${python} -m y ${no_such_thing}\n"
    )
    with pytest.raises(SettingsError) as info:
        render(template, where, settings, TOKEN, python=PYTHON)
    message = str(info.value)
    assert "line 6" in message
    assert "${no_such_thing}" in message


def test_bad_placeholder_syntax_is_a_settings_error(
    where: Locations, settings: dict[str, Any]
) -> None:
    template = "[program:rpc]\ncommand = x\n[program:sentinel]\ncommand = costs $ 5\n"
    with pytest.raises(SettingsError, match=r"supervisord\.conf\.tmpl"):
        render(template, where, settings, TOKEN, python=PYTHON)


def test_template_without_a_core_program_is_refused(
    where: Locations, settings: dict[str, Any]
) -> None:
    with pytest.raises(SettingsError, match=r"\[program:sentinel\]"):
        render("[program:rpc]\ncommand = x\n", where, settings, TOKEN, python=PYTHON)


def test_newline_in_a_setting_is_refused(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    settings["supervisor.log_level"] = "info\n[program:evil]\ncommand = rm -rf /"
    with pytest.raises(SettingsError, match="newline"):
        render(template, where, settings, TOKEN, python=PYTHON)


def test_newline_in_a_location_is_refused(
    template: str, short_home: Path, settings: dict[str, Any]
) -> None:
    where = resolve(short_home / "a\nb", environ={})
    with pytest.raises(SettingsError, match="newline"):
        render(template, where, settings, TOKEN, python=PYTHON)


def test_write_is_private_and_replaces(short_home: Path) -> None:
    path = short_home / "supervisord.conf"
    write(path, RenderedConfig(text="first\n", programs=()))
    write(path, RenderedConfig(text="second\n", programs=()))
    assert path.read_text() == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (short_home / "supervisord.conf.new").exists()


# -- supervisord's own parser ------------------------------------------------------------


def test_supervisord_accepts_the_rendered_config(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    where.ensure()
    rendered = render(template, where, settings, TOKEN, python=PYTHON)
    opts = _supervisor_parse(where.supervisor_conf, rendered)
    assert opts.umask == 0o077
    assert opts.logfile == f"{where.logs}/supervisord.log"
    assert opts.pidfile == str(where.supervisor_pidfile)
    assert opts.configroot.supervisord.environment == {
        "NUA_RUN_TOKEN": TOKEN,
        "NUA_HOME": str(where.home),
    }
    [server] = opts.configroot.supervisord.server_configs
    assert server["file"] == str(where.supervisor_socket)
    assert server["chmod"] == 0o700
    assert [g.name for g in opts.process_group_configs] == ["nua"]
    programs = _programs(opts)
    assert sorted(programs) == ["nua:rpc", "nua:sentinel"]
    rpc = programs["nua:rpc"]
    assert shlex.split(rpc.command) == [PYTHON, "-m", "orchestrator.rpc.worker"]
    assert rpc.stopasgroup and rpc.killasgroup
    assert rpc.stopwaitsecs == settings["rpc.stop_timeout"]
    assert rpc.stdout_logfile == f"{where.logs}/rpc.log"
    assert rpc.environment["NUA_RUN_TOKEN"] == TOKEN


def test_supervisord_parses_stop_signals_and_log_rotation_as_set(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    """What supervisord will do, read back through its parser: not the text we wrote."""
    where.ensure()
    settings.update(
        {
            "supervisor.log_max_bytes": "3MB",
            "supervisor.log_backups": 7,
            "programs.log_max_bytes": "2KB",
            "programs.log_backups": 4,
            "rpc.stop_timeout": 13,
        }
    )
    opts = _supervisor_parse(
        where.supervisor_conf, render(template, where, settings, TOKEN, python=PYTHON)
    )
    assert opts.logfile_maxbytes == 3 * 1024 * 1024
    assert opts.logfile_backups == 7
    programs = _programs(opts)
    for name in ("nua:rpc", "nua:sentinel"):
        program = programs[name]
        assert program.stopsignal == signal.SIGTERM, name
        assert program.stopasgroup and program.killasgroup, name
        assert program.redirect_stderr, name
        assert program.stdout_logfile_maxbytes == 2 * 1024, name
        assert program.stdout_logfile_backups == 4, name
    assert programs["nua:rpc"].stopwaitsecs == 13
    assert programs["nua:sentinel"].stopwaitsecs == 10


def test_supervisord_reads_the_multi_line_sentinel_command_as_one_argv(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    where.ensure()
    opts = _supervisor_parse(
        where.supervisor_conf, render(template, where, settings, TOKEN, python=PYTHON)
    )
    sentinel = _programs(opts)["nua:sentinel"]
    assert shlex.split(sentinel.command) == [
        PYTHON,
        "-m",
        "orchestrator.sentinel",
        "--interval",
        "5.0",
        "--ping-timeout",
        "2.0",
        "--failures",
        "3",
        "--backoff-initial",
        "5.0",
        "--backoff-max",
        "300.0",
        "--stable-after",
        "60.0",
        "--app-interval",
        "10.0",
        "--app-failures",
        "3",
    ]
    assert sentinel.stopasgroup and sentinel.killasgroup


def test_supervisord_reads_back_paths_with_spaces_and_commas_and_a_python_with_percent(
    template: str, short_home: Path, settings: dict[str, Any]
) -> None:
    where = resolve(short_home / "a b,c", environ={})
    where.ensure()
    opts = _supervisor_parse(
        where.supervisor_conf,
        render(template, where, settings, TOKEN, python="/opt/my py/py%thon"),
    )
    assert opts.logfile == f"{where.logs}/supervisord.log"
    rpc = _programs(opts)["nua:rpc"]
    assert rpc.stdout_logfile == f"{where.logs}/rpc.log"
    assert shlex.split(rpc.command)[0] == "/opt/my py/py%thon"
    assert opts.configroot.supervisord.server_configs[0]["file"] == str(where.supervisor_socket)


def test_supervisord_reads_back_an_optional_program(
    template: str, where: Locations, settings: dict[str, Any]
) -> None:
    where.ensure()
    settings["programs.web"] = True
    rendered = render(
        template, where, settings, TOKEN, python=PYTHON, program_available=lambda n: True
    )
    programs = _programs(_supervisor_parse(where.supervisor_conf, rendered))
    assert sorted(programs) == ["nua:rpc", "nua:sentinel", "nua:web"]
    assert shlex.split(programs["nua:web"].command) == [PYTHON, "-m", "orchestrator.web"]


@pytest.mark.parametrize(
    "name",
    [
        "a%b",
        'a"b',
        "a\\b",
        "a b,c=d",
    ],
)
def test_programs_get_exactly_our_home(
    template: str, short_home: Path, settings: dict[str, Any], name: str
) -> None:
    """NUA_HOME as the programs see it is the home that start resolved, or render refuses."""
    where = resolve(short_home / name, environ={})
    where.ensure()
    try:
        rendered = render(template, where, settings, TOKEN, python=PYTHON)
    except SettingsError:
        return  # refusing a home supervisord cannot carry is acceptable
    opts = _supervisor_parse(where.supervisor_conf, rendered)
    for program in _programs(opts).values():
        assert program.environment["NUA_HOME"] == str(where.home)
