"""orchestrator/console: the cleo applications' exit codes and output, without daemons."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator import __version__
from orchestrator.console import admin_app, client_app
from orchestrator.console.application import NuaApplication
from orchestrator.errors import ExitCode
from orchestrator.host.locations import resolve
from orchestrator.services.status import StatusReport


@pytest.fixture
def admin() -> ApplicationTester:
    return ApplicationTester(admin_app.application())


@pytest.fixture
def client() -> ApplicationTester:
    return ApplicationTester(client_app.application())


@pytest.mark.parametrize(
    ("factory", "title"),
    [(admin_app.application, "Nua Orchestrator"), (client_app.application, "Nua")],
)
def test_version_prints_the_version_and_exits_0(
    factory: Callable[[], NuaApplication], title: str
) -> None:
    tester = ApplicationTester(factory())
    assert tester.execute("--version") == 0
    assert tester.io.fetch_output() == f"{title} (version {__version__})\n"
    assert tester.io.fetch_error() == ""


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_admin_version_short_and_long(admin: ApplicationTester, flag: str) -> None:
    assert admin.execute(flag) == 0
    assert admin.io.fetch_output() == f"Nua Orchestrator (version {__version__})\n"


def test_admin_help_shows_the_commands_and_the_global_options(admin: ApplicationTester) -> None:
    assert admin.execute("--help") == 0
    output = admin.io.fetch_output()
    assert "-V, --version" in output
    assert "--home" in output and "same as NUA_HOME" in output
    for command in ("start", "stop", "restart", "status", "db check"):
        assert command in output
    assert admin.io.fetch_error() == ""


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("start", "system.ping"),
        ("stop", "XML-RPC"),
        ("restart", "instance lock"),
        ("status", "3 not running"),
    ],
)
def test_admin_command_help(admin: ApplicationTester, command: str, words: str) -> None:
    assert admin.execute(f"{command} --help") == 0
    output = admin.io.fetch_output()
    assert f"{command} [options]" in output
    assert "--json" in output
    assert words in " ".join(output.split())


def test_admin_lists_its_commands(admin: ApplicationTester) -> None:
    assert admin.execute("list") == 0
    output = admin.io.fetch_output()
    for command in (
        "start",
        "stop",
        "restart",
        "status",
        "backup",
        "backups",
        "restore",
        "db check",
    ):
        assert command in output
    assert "--home" in output


@pytest.mark.parametrize("args", ["frobnicate", "stat-us", "ping"])
def test_unknown_admin_command_is_a_usage_error(admin: ApplicationTester, args: str) -> None:
    assert admin.execute(args) == ExitCode.USAGE == 2
    assert args in admin.io.fetch_error()


def test_unknown_client_command_is_a_usage_error(client: ApplicationTester) -> None:
    assert client.execute("status") == ExitCode.USAGE


def test_unknown_option_is_a_usage_error(admin: ApplicationTester, short_home: Path) -> None:
    assert admin.execute(f"status --home {short_home} --no-such-option") == ExitCode.USAGE
    assert "no-such-option" in admin.io.fetch_error()


def test_unknown_global_option_is_a_usage_error(client: ApplicationTester) -> None:
    assert client.execute("--bogus") == ExitCode.USAGE


def test_home_option_needs_a_value(admin: ApplicationTester) -> None:
    assert admin.execute("status --home") == ExitCode.USAGE


def test_status_json_when_not_running(admin: ApplicationTester, short_home: Path) -> None:
    code = admin.execute(f"status --home {short_home} --json")
    assert code == ExitCode.NOT_RUNNING == 3
    report = json.loads(admin.io.fetch_output())
    where = resolve(short_home, environ={})
    assert report["health"] == "not running"
    assert report["running"] is False
    assert report["exit_code"] == 3
    assert report["programs"] == []
    assert report["leftovers"] is None
    assert report["locations"]["rpc_endpoint"] == where.rpc_endpoint
    assert report["locations"]["database"] == str(where.database)


def test_status_human_when_not_running(admin: ApplicationTester, short_home: Path) -> None:
    assert admin.execute(f"status --home {short_home}") == ExitCode.NOT_RUNNING
    output = admin.io.fetch_output()
    assert "nua-orchestrator: not running" in output
    assert str(resolve(short_home, environ={}).supervisor_conf) in output


def test_status_reports_stale_files_of_a_crashed_run(
    admin: ApplicationTester, short_home: Path
) -> None:
    where = resolve(short_home, environ={})
    where.ensure()
    where.supervisor_pidfile.write_text("999999\n")
    assert admin.execute(f"status --home {short_home} --json") == ExitCode.NOT_RUNNING
    report = json.loads(admin.io.fetch_output())
    assert report["health"] == "not running"
    assert "supervisord.pid" in report["leftovers"]


def test_ping_when_not_running_names_the_endpoint(
    client: ApplicationTester, short_home: Path
) -> None:
    code = client.execute(f"ping --home {short_home} --timeout 0.3")
    assert code == ExitCode.NOT_RUNNING == 3
    error = client.io.fetch_error()
    assert resolve(short_home, environ={}).rpc_endpoint in error
    assert "not running" in error
    assert client.io.fetch_output() == ""


def test_ping_with_a_bad_timeout_is_a_usage_error(
    client: ApplicationTester, short_home: Path
) -> None:
    assert client.execute(f"ping --home {short_home} --timeout soon") == ExitCode.USAGE
    assert "soon" in client.io.fetch_error()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_lists_the_commands(admin: ApplicationTester, shell: str) -> None:
    assert admin.execute(f"completions {shell}") == 0
    script = admin.io.fetch_output()
    for command in ("start", "stop", "restart", "status"):
        assert command in script
    assert ("-l home" if shell == "fish" else "--home") in script


@pytest.mark.parametrize(
    ("report", "code", "line"),
    [
        (
            StatusReport(running=True, supervisord_pid=7, problems=["nua:rpc is FATAL"]),
            1,
            "problem: nua:rpc is FATAL",
        ),
        (StatusReport(running=True, supervisord_pid=7), 0, "nua-orchestrator: healthy"),
        (StatusReport(running=False), 3, "nua-orchestrator: not running"),
    ],
)
def test_status_exits_with_the_report_code(
    admin: ApplicationTester,
    short_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    report: StatusReport,
    code: int,
    line: str,
) -> None:
    from orchestrator.console.commands.admin import status as status_command

    monkeypatch.setattr(status_command, "collect", lambda _where: report)
    assert admin.execute(f"status --home {short_home}") == code
    assert line in admin.io.fetch_output()
    assert admin.execute(f"status --home {short_home} --json") == code
    assert json.loads(admin.io.fetch_output())["exit_code"] == code


def test_a_file_that_cannot_be_used_is_one_error_line_not_a_rendered_exception() -> None:
    from orchestrator.console.application import NuaCommand

    class Broken(NuaCommand):
        name = "broken"

        def handle(self) -> int:
            open("/nonexistent-nua-folder/x.db")  # noqa: SIM115
            return 0

    tester = ApplicationTester(NuaApplication("nua-orchestrator", {"broken": Broken}))
    code = tester.execute("broken")
    err = tester.io.fetch_error()
    assert code == ExitCode.ERROR == 1
    assert err == ("error: [Errno 2] No such file or directory: '/nonexistent-nua-folder/x.db'\n")
