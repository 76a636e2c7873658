"""`nua` against a real orchestrator: output shapes and exit codes of every command.

One orchestrator serves the whole module (starting one takes seconds); each
test uses its own usernames, and settings tests put back what they change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.console import client_app
from tests.support.orchestrator import Orchestrator

pytestmark = pytest.mark.e2e

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture(scope="module")
def live() -> Iterator[Orchestrator]:
    """A running orchestrator for the module; stopped at the end, leaks fail."""
    home = Path(tempfile.mkdtemp(prefix="nua"))
    orch = Orchestrator(home)
    try:
        orch.start()
        yield orch
    finally:
        leaked = orch.kill_everything()
        shutil.rmtree(home, ignore_errors=True)
    assert not leaked, f"processes leaked from {home}: {leaked}"


def nua(live: Orchestrator, args: str) -> tuple[int, str, str]:
    """Run `nua ARGS --home HOME` in process; (exit code, stdout, stderr)."""
    tester = ApplicationTester(client_app.application())
    code = tester.execute(f"{args} --home {live.home}", interactive=False)
    return code, tester.io.fetch_output(), tester.io.fetch_error()


def nua_json(live: Orchestrator, args: str) -> object:
    code, out, err = nua(live, f"{args} --json")
    assert code == 0, err
    return json.loads(out)


# -- ping, methods, call ------------------------------------------------------------------


def test_ping_through_the_real_binary(live: Orchestrator) -> None:
    result = live.run("ping", cli="nua")
    assert result.returncode == 0, result.stderr
    endpoint = re.escape(live.locations.rpc_endpoint)
    assert re.fullmatch(rf"pong from {endpoint} in \d+\.\d ms\n", result.stdout)
    assert result.stderr == ""


def test_methods_lists_every_method_with_its_summary(live: Orchestrator) -> None:
    code, out, err = nua(live, "methods")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert re.fullmatch(r"METHOD +DESCRIPTION", lines[0])
    names = [line.split()[0] for line in lines[1:]]
    assert names == sorted(names)
    for name in ("system.ping", "settings.set", "user.add", "user.list", "user.set_password"):
        assert name in names
    width = lines[0].index("DESCRIPTION")
    assert all(line[width - 2 : width] == "  " for line in lines[1:])
    assert "settings.reset  " in out and "Put a setting back to its shipped default." in out
    assert nua_json(live, "methods") == nua_json(live, "call system.describe")


def test_methods_describes_one(live: Orchestrator) -> None:
    code, out, _ = nua(live, "methods settings.set")
    assert code == 0
    assert out.startswith(
        "settings.set  (changes state)\n"
        "parameters:\n"
        "  key              str         required\n"
        "  value            Any         required\n"
        "  idempotency_key  str | None  default null\n"
        "returns: dict[str, Any]\n"
        "\n"
        "Store a new value; it must have the type of the setting's default.\n"
    )
    described = nua_json(live, "methods user.add")
    assert isinstance(described, dict)
    assert described["name"] == "user.add"
    assert described["changes"] is True
    assert [p["name"] for p in described["params"]][:2] == ["username", "email"]


def test_methods_of_an_unknown_name_is_not_found(live: Orchestrator) -> None:
    code, out, err = nua(live, "methods no.such")
    assert (code, out) == (4, "")
    assert err.startswith("error: ") and err.endswith(" (method)\n")


def test_call_any_method(live: Orchestrator) -> None:
    code, out, _ = nua(live, "call system.version")
    assert code == 0
    version = json.loads(out)
    assert version["endpoint"] == live.locations.rpc_endpoint
    assert out == json.dumps(version, indent=2, sort_keys=True) + "\n"
    assert nua(live, "call system.ping") == (0, '"pong"\n', "")
    assert nua(live, "call system.list_methods '[]'")[0] == 0


@pytest.mark.parametrize(
    ("args", "exit_code", "line"),
    [
        ("call no.such", 4, "error: the orchestrator has no method 'no.such'; "),
        ("call system.ping '[1]'", 2, "error: Invalid params: "),
        ('call user.add \'{"username": "x"}\'', 2, "error: Invalid params: "),
        ("call user.get '[\"nobody-here\"]'", 4, "error: "),
        ("call system.ping '{oops'", 2, "error: params are not valid JSON: "),
    ],
)
def test_call_errors(live: Orchestrator, args: str, exit_code: int, line: str) -> None:
    code, out, err = nua(live, args)
    assert (code, out) == (exit_code, "")
    assert err.startswith(line)
    assert err.count("\n") == 1


# -- users --------------------------------------------------------------------------------------


def test_user_lifecycle(live: Orchestrator) -> None:
    assert nua(live, "user add alice --email alice@example.com") == (
        0,
        "added user alice (alice@example.com, role user)\n",
        "",
    )
    assert nua(live, "user add albert --email albert@example.org --role admin") == (
        0,
        "added user albert (albert@example.org, role admin)\n",
        "",
    )

    code, out, _ = nua(live, "user list --search al")
    assert code == 0
    assert re.fullmatch(
        "USERNAME  EMAIL               ROLE   PASSWORD  CREATED \\(UTC\\)\n"
        f"albert    albert@example.org  admin  no        {STAMP}\n"
        f"alice     alice@example.com   user   no        {STAMP}\n",
        out,
    ), out

    code, out, _ = nua(live, "user show alice")
    assert code == 0
    assert re.fullmatch(
        "username  alice\n"
        "email     alice@example.com\n"
        "role      user\n"
        "password  not set\n"
        r"id        \d+\n"
        f"created   {STAMP} UTC\n"
        f"updated   {STAMP} UTC\n",
        out,
    ), out
    shown = nua_json(live, "user show alice")
    assert isinstance(shown, dict)
    assert set(shown) == {
        "id",
        "username",
        "email",
        "role",
        "has_password",
        "created_at",
        "updated_at",
    }

    update = "user update alice --role admin --email alice@example.net --rename alicia"
    assert nua(live, update) == (
        0,
        "updated user alicia (alice@example.net, role admin), renamed from alice\n",
        "",
    )
    code, out, err = nua(live, "user show alice")
    assert (code, out) == (4, "")
    assert err.startswith("error: ") and err.endswith(" (username)\n")

    assert nua(live, "user delete albert") == (0, "deleted user albert\n", "")
    assert nua_json(live, "user delete alicia") == {"deleted": "alicia"}
    code, _, err = nua(live, "user delete alicia")
    assert code == 4
    assert err.endswith(" (username)\n")
    assert nua(live, "user list --search al") == (0, "no users\n", "")


def test_user_errors_have_their_exit_codes(live: Orchestrator) -> None:
    assert nua(live, "user add dupont --email dupont@example.com")[0] == 0
    code, out, err = nua(live, "user add dupont --email other@example.com")
    assert (code, out) == (5, "")
    assert err.startswith("error: ") and err.endswith(" (username)\n")
    assert err.count("\n") == 1

    for args, field in [
        ("user add durand --email not-an-email", "email"),
        ("user add durand --email durand@example.com --role emperor", "role"),
        ("user add D --email durand@example.com", "username"),
        ("user update dupont --email nope", "email"),
        ("user list --order-by shoe_size", "order_by"),
    ]:
        code, out, err = nua(live, args)
        assert (code, out) == (2, ""), args
        assert err.startswith("error: ") and err.endswith(f" ({field})\n"), (args, err)
    code, _, err = nua(live, "user update nobody --role admin")
    assert code == 4
    assert err.endswith(" (username)\n")


def test_user_list_pages(live: Orchestrator) -> None:
    for name in ("page-a", "page-b", "page-c"):
        assert nua(live, f"user add {name} --email {name}@example.com")[0] == 0
    code, out, _ = nua(live, "user list --search page- --limit 2")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["page-a", "page-b"]
    assert lines[3] == f"more: nua user list --home {live.home} --search page- --limit 2 --offset 2"
    page = nua_json(live, "user list --search page- --limit 2 --offset 2 --desc")
    assert isinstance(page, dict)
    assert [u["username"] for u in page["users"]] == ["page-a"]
    assert (page["limit"], page["offset"], page["next_offset"]) == (2, 2, None)


def _check_through_stdin(live: Orchestrator, params: str) -> object:
    """`nua call user.check_password -`: the params (a password) never reach argv."""
    checked = live.run("call", "user.check_password", "-", stdin=params, cli="nua")
    assert checked.returncode == 0, checked.stderr
    return json.loads(checked.stdout)


def test_passwords_from_stdin(live: Orchestrator) -> None:
    added = live.run(
        "user", "add", "carol", "--email", "carol@example.com", "--password-stdin",
        "--json", stdin="first secret\n", cli="nua",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.json()["has_password"] is True
    check = '{"username": "carol", "password": "first secret"}'
    assert _check_through_stdin(live, check) == {"valid": True}

    changed = live.run(
        "user", "passwd", "carol", "--password-stdin", stdin="second secret\n", cli="nua"
    )
    assert (changed.returncode, changed.stdout, changed.stderr) == (
        0,
        "password set for carol\n",
        "",
    )
    check = '{"username": "carol", "password": "second secret"}'
    assert _check_through_stdin(live, check) == {"valid": True}

    too_short = live.run("user", "passwd", "carol", "--password-stdin", stdin="x\n", cli="nua")
    assert too_short.returncode == 2
    assert too_short.stderr.endswith(" (password)\n")

    # No terminal and no --password-stdin: a usage error, nothing sent.
    no_tty = live.run("user", "passwd", "carol", stdin="", cli="nua")
    assert no_tty.returncode == 2
    assert "--password-stdin" in no_tty.stderr

    nobody = live.run(
        "user", "passwd", "nobody", "--password-stdin", stdin="long enough\n", cli="nua"
    )
    assert nobody.returncode == 4
    assert nobody.stderr.endswith(" (username)\n")


# -- settings -----------------------------------------------------------------------------------


def test_settings_list(live: Orchestrator) -> None:
    code, out, _ = nua(live, "settings list")
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(r"KEY +TYPE +VALUE +DEFAULT +CHANGED", lines[0])
    assert any(re.fullmatch(r"sentinel\.interval +float +5\.0 +5\.0", line) for line in lines)
    assert any(re.fullmatch(r'supervisor\.log_level +str +"info" +"info"', line) for line in lines)
    listed = nua_json(live, "settings list")
    assert isinstance(listed, list)
    assert len(lines) == len(listed) + 1
    assert {s["type"] for s in listed} == {"bool", "int", "float", "str"}


def test_settings_set_get_reset(live: Orchestrator) -> None:
    assert nua(live, "settings set sentinel.stable_after 90") == (
        0,
        "sentinel.stable_after = 90.0  (float, default 60.0, changed)\n",
        "",
    )
    assert nua_json(live, "settings get sentinel.stable_after") == {
        "key": "sentinel.stable_after",
        "value": 90.0,
        "default": 60.0,
        "type": "float",
        "changed": True,
    }
    assert nua(live, "settings set supervisor.log_level debug") == (
        0,
        'supervisor.log_level = "debug"  (str, default "info", changed)\n',
        "",
    )
    assert nua(live, "settings reset sentinel.stable_after") == (
        0,
        "sentinel.stable_after = 60.0  (float, default 60.0)\n",
        "",
    )
    assert nua(live, "settings reset supervisor.log_level")[0] == 0
    assert nua(live, "settings get supervisor.log_level") == (
        0,
        'supervisor.log_level = "info"  (str, default "info")\n',
        "",
    )


@pytest.mark.parametrize(
    ("args", "exit_code", "field"),
    [
        ("settings get no.such_key", 4, "key"),
        ("settings set no.such_key 1", 4, "key"),
        ("settings reset no.such_key", 4, "key"),
        ("settings set programs.cron 1", 2, "value"),
        ("settings set programs.start_retries 2.5", 2, "value"),
        ("settings set sentinel.interval fast", 2, "value"),
        ("settings set supervisor.log_level 5", 2, "value"),
    ],
)
def test_settings_errors(live: Orchestrator, args: str, exit_code: int, field: str) -> None:
    code, out, err = nua(live, args)
    assert (code, out) == (exit_code, "")
    assert err.startswith("error: ") and err.endswith(f" ({field})\n")


# -- not running ----------------------------------------------------------------------------------


def test_not_running_through_the_real_binary(short_home: Path) -> None:
    idle = Orchestrator(short_home)
    result = idle.run("user", "list", "--timeout", "0.5", cli="nua", timeout=10)
    assert result.returncode == 3
    assert result.stdout == ""
    assert idle.locations.rpc_endpoint in result.stderr
    assert "not running" in result.stderr


# -- the demo -------------------------------------------------------------------------------------


def test_the_tour_runs_and_cleans_up() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUA_")}
    env["NUA_VENV"] = str(Path(sys.executable).parent.parent)
    done = subprocess.run(
        [str(root / "demos" / "tour.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "$ echo 'correct horse battery staple' | nua user add carol" in out
    assert "-> exit code 5 (5: already exists)" in out
    assert "-> exit code 4 (4: not found)" in out
    home = re.search(r"tour finished; (\S+) removed", out)
    assert home, out
    assert not Path(home.group(1)).exists()
    leaked = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(home.group(1) in part for part in p.info["cmdline"] or [])
    ]
    assert leaked == []


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        # Not JSON numbers: refused before anything is sent (exit 2).
        (("call", "echo.back", "[1e400]"), 2, "params are not valid JSON"),
        # Read as the string "1e400", which is not the setting's type.
        (("settings", "set", "sentinel.interval", "1e400"), 2, "sentinel.interval"),
        # A wrong JSON type for a parameter: invalid params, naming it.
        (("call", "user.get", "[5]"), 2, "username must be a string, not a number"),
    ],
)
def test_values_the_worker_cannot_take_are_clear_errors_not_not_running(
    live: Orchestrator, args: tuple[str, ...], code: int, says: str
) -> None:
    done = live.run(*args, cli="nua")
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    assert "not running" not in done.stderr
    assert live.run("settings", "get", "sentinel.interval", cli="nua").returncode == 0


def test_a_message_over_the_size_limit_is_refused_at_once(live: Orchestrator) -> None:
    # The worker answers a message it cannot read with "id": null; nua takes it as its answer.
    big = json.dumps({"value": "x" * 1_100_000})
    began = time.monotonic()
    done = live.run("call", "system.ping", "-", stdin=big, cli="nua")
    took = time.monotonic() - began
    assert done.returncode == 1, done.stderr
    assert "rpc.max_message_bytes" in done.stderr
    assert took < 5, f"nua waited {took:.1f}s for an answer it already had"
