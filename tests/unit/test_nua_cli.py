"""orchestrator/console (nua): commands, output shapes and exit codes, without a server.

Two kinds of tests: with nothing listening (not running, usage errors), and
with `ClientCommand.rpc` replaced by canned answers, to check what each
command sends and prints.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.console import client_app
from orchestrator.console.client_command import ClientCommand, exit_code_of
from orchestrator.console.commands.client.call import parse_params
from orchestrator.console.commands.client.settings.set import parse_value
from orchestrator.errors import ExitCode
from orchestrator.host.locations import resolve
from orchestrator.rpc.client import RemoteError

# One valid invocation of every command (none of them needs a server to parse).
EVERY_COMMAND = [
    "ping",
    "methods",
    "methods user.add",
    "call system.ping",
    "call user.get '[\"alice\"]'",
    "user add alice --email a@example.com",
    "user list",
    "user show alice",
    "user update alice --role admin",
    "user delete alice",
    "user passwd alice --password-stdin",
    "settings list",
    "settings get sentinel.interval",
    "settings set sentinel.interval 2.5",
    "settings reset sentinel.interval",
    f"install {Path(__file__).parents[1] / 'apps' / 'hello'}",
    "apps",
    "app start hello",
    "app stop hello",
    "app restart hello",
    "app logs hello",
    "app logs hello -f --stderr --lines 5",
    "app rollback hello",
    "app env hello",
    "app remove hello --purge",
]

CHANGING_COMMANDS = {
    "user add",
    "user update",
    "user delete",
    "user passwd",
    "settings set",
    "settings reset",
    # The first two words of its EVERY_COMMAND line: install PATH.
    f"install {Path(__file__).parents[1] / 'apps' / 'hello'}",
    "app start",
    "app stop",
    "app restart",
    "app rollback",
    "app remove",
}


@pytest.fixture
def nua() -> ApplicationTester:
    return ApplicationTester(client_app.application())


class FakeWorker:
    """Stands in for `ClientCommand.rpc`: records calls, answers from a script."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.answers: dict[str, Any] = {}

    def answer(self, method: str, result: Any) -> None:
        self.answers[method] = result

    def rpc(self, _command: ClientCommand, method: str, params: Any = None) -> Any:
        self.calls.append((method, params))
        result = self.answers[method]
        if isinstance(result, Exception):
            raise result
        return result(params) if callable(result) else result


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    fake = FakeWorker()
    monkeypatch.setattr(
        ClientCommand, "rpc", lambda command, method, params=None: fake.rpc(command, method, params)
    )
    return fake


def run(nua: ApplicationTester, args: str, **kw: Any) -> tuple[int, str, str]:
    code = nua.execute(args, **kw)
    return code, nua.io.fetch_output(), nua.io.fetch_error()


ALICE = {
    "id": 1,
    "username": "alice",
    "email": "a@example.com",
    "role": "user",
    "has_password": False,
    "created_at": "2026-01-02T03:04:05.678901+00:00",
    "updated_at": "2026-01-02T03:04:06+00:00",
}
BOB = {**ALICE, "id": 2, "username": "bob", "email": "bob@example.org", "role": "admin"}
BOB["has_password"] = True


# -- the application -------------------------------------------------------------------


def test_every_command_is_registered_and_listed(nua: ApplicationTester) -> None:
    assert set(client_app.COMMANDS) == {
        "ping",
        "methods",
        "call",
        *(f"user {c}" for c in ("add", "list", "show", "update", "delete", "passwd")),
        *(f"settings {c}" for c in ("list", "get", "set", "reset")),
        "install",
        "apps",
        *(f"app {c}" for c in ("start", "stop", "restart", "logs", "rollback", "env", "remove")),
    }
    assert nua.execute("list") == 0
    listed = nua.io.fetch_output()
    for name in client_app.COMMANDS:
        assert name.split()[-1] in listed, name


def test_each_command_lives_in_its_own_module() -> None:
    for name, factory in client_app.COMMANDS.items():
        command = factory()
        assert command.name == name
        module = type(command).__module__
        assert module == "orchestrator.console.commands.client." + name.replace(" ", ".")
        assert isinstance(command, ClientCommand)
        assert command.description
        for common in ("json", "timeout"):
            assert command.definition.has_option(common), f"{name} has no --{common}"


def test_help_imports_nothing_heavy() -> None:
    # `nua --help` describes every command, so it loads every command module.
    script = (
        "import sys\n"
        "from cleo.testers.application_tester import ApplicationTester\n"
        "from orchestrator.console import client_app\n"
        "tester = ApplicationTester(client_app.application())\n"
        "assert tester.execute('list') == 0\n"
        "for name in client_app.COMMANDS: tester.execute(f'{name} --help')\n"
        "heavy = {'sqlalchemy', 'alembic', 'zmq', 'tinyrpc', 'psutil'} & {\n"
        "    m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- no orchestrator: exit 3, naming the endpoint, within the timeout -------------------------


@pytest.mark.parametrize("args", EVERY_COMMAND)
@pytest.mark.parametrize("json_flag", ["", " --json"])
def test_not_running_exits_3_naming_the_endpoint(
    nua: ApplicationTester, short_home: Path, args: str, json_flag: str
) -> None:
    began = time.monotonic()
    code, out, err = run(
        nua, f"{args}{json_flag} --home {short_home} --timeout 0.1", inputs="secret-pw\n"
    )
    elapsed = time.monotonic() - began
    assert code == ExitCode.NOT_RUNNING == 3
    assert out == ""
    endpoint = resolve(short_home, environ={}).rpc_endpoint
    said = (
        "error: the orchestrator is not running or not answering: no answer from "
        f"{endpoint} within 0.1s; start it with: nua-orchestrator start --home {short_home}"
    )
    if " ".join(args.split()[:2]) in CHANGING_COMMANDS:
        said += "; if it restarted while serving this command, check whether its change was applied"
    assert err == said + "\n"
    assert elapsed < 2.0


# -- usage errors (exit 2), found before anything is sent ---------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("user add", "username"),
        ("user add alice", "--email is required (email)"),
        ("user add alice --email a@example.com --password-stdin --ask-password", "not both"),
        ("user show", "username"),
        ("user update alice", "nothing to change"),
        ("user list --limit ten", "--limit 'ten' is not a whole number (limit)"),
        ("user list --offset 1.5", "--offset '1.5' is not a whole number (offset)"),
        ("user list --bogus", "bogus"),
        ("settings get", "key"),
        ("settings set sentinel.interval", "value"),
        ("call", "method"),
        ("call system.ping {bad", "params are not valid JSON"),
        ("call system.ping 5", "params must be a JSON array or object"),
        ("call system.ping '\"x\"'", "params must be a JSON array or object"),
        ("call system.ping [NaN]", "params are not valid JSON"),
        ("ping --timeout soon", "--timeout 'soon' is not a number of seconds"),
        ("ping --timeout 0", "--timeout '0' is not a number of seconds"),
        ("ping --timeout nan", "is not a number of seconds"),
        ("frobnicate", "frobnicate"),
        ("user frobnicate", "Did you mean one of these?\n    user add"),
    ],
)
def test_usage_errors_exit_2(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, args: str, says: str
) -> None:
    code, out, err = run(nua, f"{args} --home {short_home}")
    assert code == ExitCode.USAGE == 2
    assert says in err
    assert out == ""
    assert worker.calls == []


def test_bad_json_for_call_is_a_usage_error_without_a_server(
    nua: ApplicationTester, short_home: Path
) -> None:
    code, out, err = run(nua, f"call user.add {{oops --home {short_home} --timeout 0.2")
    assert code == 2
    assert out == ""
    assert err.startswith("error: params are not valid JSON: ")
    assert err.endswith(" (params)\n")


def test_passwd_without_a_terminal_needs_password_stdin(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    code, _, err = run(nua, f"user passwd alice --home {short_home}", interactive=False)
    assert code == 2
    assert err == (
        "error: no terminal to ask for the password; pipe it with --password-stdin (password)\n"
    )
    assert worker.calls == []


def test_password_stdin_needs_a_line(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    code, _, err = run(nua, f"user passwd alice --password-stdin --home {short_home}", inputs="")
    assert code == 2
    assert "stdin gave no password" in err
    assert worker.calls == []


# -- passwords -------------------------------------------------------------------------------


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Answers for the hidden prompts; returns the prompts' log."""

    def install(*answers: str) -> list[str]:
        queue = list(answers)
        asked: list[str] = []

        def getpass(prompt: str = "", stream: Any = None) -> str:
            asked.append(prompt)
            return queue.pop(0)

        monkeypatch.setattr("getpass.getpass", getpass)
        return asked

    return install


def test_password_is_asked_twice_without_echo(
    nua: ApplicationTester, worker: FakeWorker, typed: Callable[..., list[str]], short_home: Path
) -> None:
    asked = typed("correct horse", "correct horse")
    worker.answer("user.set_password", {"username": "alice", "password_set": True})
    code, out, err = run(nua, f"user passwd alice --home {short_home}")
    assert code == 0
    assert len(asked) == 2
    assert worker.calls == [
        ("user.set_password", {"username": "alice", "password": "correct horse"})
    ]
    assert out == "password set for alice\n"
    assert "Password:" in err
    assert "Password (again):" in err
    assert "correct horse" not in out + err


def test_passwords_that_differ_exit_1_and_send_nothing(
    nua: ApplicationTester, worker: FakeWorker, typed: Callable[..., list[str]], short_home: Path
) -> None:
    typed("correct horse", "correct hose")
    code, out, err = run(nua, f"user passwd alice --home {short_home}")
    assert code == ExitCode.ERROR == 1
    assert out == ""
    assert err.endswith("error: the passwords do not match; nothing was changed (password)\n")
    assert worker.calls == []


def test_an_empty_password_exits_1(
    nua: ApplicationTester, worker: FakeWorker, typed: Callable[..., list[str]], short_home: Path
) -> None:
    typed("", "")
    code, _, err = run(nua, f"user passwd alice --home {short_home}")
    assert code == 1
    assert "the password is empty" in err
    assert worker.calls == []


def test_add_asks_for_a_password_only_when_told(
    nua: ApplicationTester, worker: FakeWorker, typed: Callable[..., list[str]], short_home: Path
) -> None:
    asked = typed("s3cret-pw", "s3cret-pw")
    worker.answer("user.add", {**ALICE, "has_password": True})
    assert nua.execute(f"user add alice --email a@example.com --home {short_home}") == 0
    assert asked == []
    args = f"user add alice --email a@example.com --home {short_home}"
    assert nua.execute(f"{args} --ask-password") == 0
    assert len(asked) == 2
    assert worker.calls[0] == ("user.add", {"username": "alice", "email": "a@example.com"})
    assert worker.calls[1][1]["password"] == "s3cret-pw"  # noqa: S105


def test_password_stdin_reads_one_line(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("user.add", {**ALICE, "has_password": True})
    args = f"user add alice --email a@example.com --role admin --password-stdin --home {short_home}"
    code, out, _ = run(nua, args, inputs="s3cret pw\nnext line\n")
    assert code == 0
    assert worker.calls == [
        (
            "user.add",
            {
                "username": "alice",
                "email": "a@example.com",
                "role": "admin",
                "password": "s3cret pw",
            },
        )
    ]
    assert out == "added user alice (a@example.com, role user)\n"


# -- what commands send and print ------------------------------------------------------------------


def test_ping(nua: ApplicationTester, short_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []

    def call(_client: Any, method: str, params: Any = None) -> Any:
        sent.append(method)
        return "pong"

    monkeypatch.setattr("orchestrator.rpc.client.RpcClient.call", call)
    endpoint = resolve(short_home, environ={}).rpc_endpoint
    code, out, _ = run(nua, f"ping --home {short_home}")
    assert (code, sent) == (0, ["system.ping"])
    assert re.fullmatch(rf"pong from {re.escape(endpoint)} in \d+\.\d ms\n", out)
    assert nua.execute(f"ping --json --home {short_home}") == 0
    answer = json.loads(nua.io.fetch_output())
    assert answer["result"] == "pong"
    assert answer["endpoint"] == endpoint
    assert answer["ms"] >= 0


def test_user_list_is_an_aligned_table(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer(
        "user.list", {"users": [ALICE, BOB], "limit": 50, "offset": 0, "next_offset": None}
    )
    code, out, err = run(nua, f"user list --home {short_home}")
    assert (code, err) == (0, "")
    assert out == (
        "USERNAME  EMAIL            ROLE   PASSWORD  CREATED (UTC)\n"
        "alice     a@example.com    user   no        2026-01-02 03:04:05\n"
        "bob       bob@example.org  admin  yes       2026-01-02 03:04:05\n"
    )
    assert worker.calls == [("user.list", {})]


def test_user_list_passes_its_filters_and_says_how_to_get_more(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("user.list", {"users": [BOB], "limit": 1, "offset": 0, "next_offset": 1})
    args = "user list --role admin --search o --order-by email --desc --limit 1 --offset 0"
    code, out, _ = run(nua, f"{args} --home {short_home}")
    assert code == 0
    assert worker.calls == [
        (
            "user.list",
            {
                "role": "admin",
                "search": "o",
                "order_by": "email",
                "descending": True,
                "limit": 1,
                "offset": 0,
            },
        )
    ]
    assert out.splitlines()[-1] == (
        f"more: nua user list --home {short_home} --role admin --search o "
        "--order-by email --limit 1 --desc --offset 1"
    )


def test_user_list_when_empty(nua: ApplicationTester, worker: FakeWorker, short_home: Path) -> None:
    worker.answer("user.list", {"users": [], "limit": 50, "offset": 0, "next_offset": None})
    assert run(nua, f"user list --home {short_home}") == (0, "no users\n", "")


def test_user_list_json_is_the_page(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    page = {"users": [ALICE], "limit": 50, "offset": 0, "next_offset": None}
    worker.answer("user.list", page)
    code, out, _ = run(nua, f"user list --json --home {short_home}")
    assert code == 0
    assert json.loads(out) == page


def test_user_show(nua: ApplicationTester, worker: FakeWorker, short_home: Path) -> None:
    worker.answer("user.get", ALICE)
    code, out, _ = run(nua, f"user show alice --home {short_home}")
    assert code == 0
    assert out == (
        "username  alice\n"
        "email     a@example.com\n"
        "role      user\n"
        "password  not set\n"
        "id        1\n"
        "created   2026-01-02 03:04:05 UTC\n"
        "updated   2026-01-02 03:04:06 UTC\n"
    )
    assert worker.calls == [("user.get", {"username": "alice"})]
    assert nua.execute(f"user show alice --json --home {short_home}") == 0
    assert json.loads(nua.io.fetch_output()) == ALICE


def test_user_update_renames(nua: ApplicationTester, worker: FakeWorker, short_home: Path) -> None:
    worker.answer("user.update", {**ALICE, "username": "alicia", "role": "admin"})
    code, out, _ = run(
        nua,
        f"user update alice --role admin --rename alicia --email a@example.com --home {short_home}",
    )
    assert code == 0
    assert out == "updated user alicia (a@example.com, role admin), renamed from alice\n"
    assert worker.calls == [
        (
            "user.update",
            {
                "username": "alice",
                "email": "a@example.com",
                "role": "admin",
                "new_username": "alicia",
            },
        )
    ]


def test_user_delete(nua: ApplicationTester, worker: FakeWorker, short_home: Path) -> None:
    worker.answer("user.delete", {"deleted": "alice"})
    assert run(nua, f"user delete alice --home {short_home}") == (0, "deleted user alice\n", "")
    assert nua.execute(f"user delete alice --json --home {short_home}") == 0
    assert json.loads(nua.io.fetch_output()) == {"deleted": "alice"}


SETTINGS = [
    {"key": "programs.cron", "value": True, "default": False, "type": "bool", "changed": True},
    {"key": "sentinel.interval", "value": 5.0, "default": 5.0, "type": "float", "changed": False},
    {"key": "supervisor.log_level", "value": "", "default": "info", "type": "str", "changed": True},
]


def test_settings_list_is_an_aligned_table(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("settings.list", SETTINGS)
    code, out, _ = run(nua, f"settings list --home {short_home}")
    assert code == 0
    assert out == (
        "KEY                   TYPE   VALUE  DEFAULT  CHANGED\n"
        "programs.cron         bool   true   false    yes\n"
        "sentinel.interval     float  5.0    5.0\n"
        'supervisor.log_level  str    ""     "info"   yes\n'
    )
    assert nua.execute(f"settings list --json --home {short_home}") == 0
    assert json.loads(nua.io.fetch_output()) == SETTINGS


@pytest.mark.parametrize("command", ["get", "reset"])
def test_settings_get_and_reset_print_one_line(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, command: str
) -> None:
    worker.answer(f"settings.{command}", SETTINGS[2])
    code, out, _ = run(nua, f"settings {command} supervisor.log_level --home {short_home}")
    assert code == 0
    assert out == 'supervisor.log_level = ""  (str, default "info", changed)\n'
    assert worker.calls == [(f"settings.{command}", {"key": "supervisor.log_level"})]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("2.5", 2.5),
        ("true", True),
        ("false", False),
        ('"5"', "5"),
        ("debug", "debug"),
        ("", ""),
        ("10MB", "10MB"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("null", None),
        ("[1]", [1]),
    ],
)
def test_settings_set_reads_json_else_a_string(text: str, value: Any) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_settings_set_sends_the_parsed_value(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("settings.set", SETTINGS[1])
    assert nua.execute(f"settings set sentinel.interval 5 --home {short_home}") == 0
    assert nua.execute(f"settings set --home {short_home} sentinel.interval -- -1") == 0
    assert worker.calls == [
        ("settings.set", {"key": "sentinel.interval", "value": 5}),
        ("settings.set", {"key": "sentinel.interval", "value": -1}),
    ]


def test_methods_table_and_one_method(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    described = {
        "name": "user.add",
        "doc": "Create a user and return it.\n\nMore words.",
        "changes": True,
        "params": [
            {"name": "username", "type": "str", "required": True},
            {"name": "role", "type": "str", "required": False, "default": "user"},
        ],
        "returns": "dict[str, Any]",
    }
    ping = {"name": "system.ping", "doc": "Answer pong.", "changes": False, "params": []}
    worker.answer("system.describe", lambda p: described if p else [ping, described])
    code, out, _ = run(nua, f"methods --home {short_home}")
    assert code == 0
    assert out == (
        "METHOD       DESCRIPTION\n"
        "system.ping  Answer pong.\n"
        "user.add     Create a user and return it.\n"
    )
    code, out, _ = run(nua, f"methods user.add --home {short_home}")
    assert code == 0
    assert out == (
        "user.add  (changes state)\n"
        "parameters:\n"
        "  username  str  required\n"
        '  role      str  default "user"\n'
        "returns: dict[str, Any]\n"
        "\n"
        "Create a user and return it.\n"
        "\n"
        "More words.\n"
    )
    assert worker.calls[-1] == ("system.describe", {"method": "user.add"})


def test_call_prints_the_result_as_json(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("user.get", ALICE)
    code, out, _ = run(nua, f"call user.get '[\"alice\"]' --home {short_home}")
    assert code == 0
    assert json.loads(out) == ALICE
    assert out == json.dumps(ALICE, indent=2, sort_keys=True) + "\n"
    assert worker.calls == [("user.get", ["alice"])]


def test_output_is_not_taken_for_markup(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("user.get", {**ALICE, "email": "<error>x</error>@example.com"})
    code, out, _ = run(nua, f"user show alice --home {short_home}")
    assert code == 0
    assert "email     <error>x</error>@example.com\n" in out


# -- remote errors: one line on stderr and the documented exit code ------------------------------


@pytest.mark.parametrize(
    ("code", "message", "data", "exit_code", "line"),
    [
        (-32001, "no user named 'bob'", {"name": "not_found", "field": "username"}, 4,
         "error: no user named 'bob' (username)"),
        (-32002, "username 'bob' is taken", {"name": "already_exists", "field": "username"}, 5,
         "error: username 'bob' is taken (username)"),
        (-32003, "email must look like x@y.z", {"name": "invalid_argument", "field": "email"}, 2,
         "error: email must look like x@y.z (email)"),
        (-32004, "busy", {"name": "conflict"}, 5, "error: busy"),
        (-32005, "not allowed", {"name": "permission_denied"}, 1, "error: not allowed"),
        (-32006, "storage full", {"name": "unavailable"}, 1, "error: storage full"),
        (-32602, "Invalid params", {"reason": "missing a required argument: 'email'"}, 2,
         "error: Invalid params: missing a required argument: 'email'"),
        (-32603, "Internal error", {"error_id": "abc123"}, 1,
         "error: Internal error (error id abc123; details are in the rpc log)"),
    ],
)  # fmt: skip
def test_remote_errors_map_to_exit_codes(
    nua: ApplicationTester,
    worker: FakeWorker,
    short_home: Path,
    code: int,
    message: str,
    data: dict[str, Any],
    exit_code: int,
    line: str,
) -> None:
    worker.answer("user.get", RemoteError(code, message, data))
    assert run(nua, f"user show bob --home {short_home}") == (exit_code, "", line + "\n")
    assert exit_code_of(RemoteError(code, message, data)) == exit_code


def test_an_unknown_method_is_not_found(
    nua: ApplicationTester, short_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def call(_client: Any, method: str, params: Any = None) -> Any:
        raise RemoteError(-32601, "Method not found")

    monkeypatch.setattr("orchestrator.rpc.client.RpcClient.call", call)
    code, out, err = run(nua, f"call no.such --home {short_home}")
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert err == "error: the orchestrator has no method 'no.such'; `nua methods` lists them\n"


@pytest.mark.parametrize(
    ("text", "params"),
    [(None, None), ("[]", []), ('["a", 1]', ["a", 1]), ('{"a": null}', {"a": None})],
)
def test_call_params(text: str | None, params: Any) -> None:
    assert parse_params(text) == params
