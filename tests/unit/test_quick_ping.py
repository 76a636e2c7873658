"""`nua ping`'s quick path (console/quick_ping.py): the same words as cleo's command, or cleo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.console import client_app, quick_ping


@pytest.mark.parametrize(
    ("argv", "options"),
    [
        (["ping"], {}),
        (["ping", "--json"], {"json": True}),
        (["ping", "--home", "/h", "--timeout", "2"], {"home": "/h", "timeout": "2"}),
        (
            ["ping", "--home=/h", "-t", "0.5", "--json"],
            {"home": "/h", "timeout": "0.5", "json": True},
        ),
    ],
)
def test_plain_pings_take_the_quick_path(argv: list[str], options: dict[str, object]) -> None:
    assert quick_ping._options(argv) == options


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["methods"],
        ["--home", "/h", "ping"],  # a global option first: cleo parses it
        ["ping", "--help"],
        ["ping", "-v"],
        ["ping", "--bogus"],
        ["ping", "extra"],
        ["ping", "--home"],  # a missing value: cleo's usage error
        ["ping", "--timeout", "--json"],
    ],
)
def test_everything_else_is_left_to_cleo(argv: list[str]) -> None:
    assert quick_ping._options(argv) is None


def test_a_bad_timeout_is_left_to_cleo_for_its_usage_error(short_home: Path) -> None:
    assert quick_ping.run(["ping", "--home", str(short_home), "--timeout", "soon"]) is None


def _cleo(args: str) -> tuple[int, str]:
    tester = ApplicationTester(client_app.application())
    code = tester.execute(args, interactive=False)
    return code, tester.io.fetch_error()


def test_not_running_reads_the_same_on_both_paths(
    short_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = quick_ping.run(["ping", "--home", str(short_home), "--timeout", "0.3"])
    quick = capsys.readouterr()
    cleo_code, cleo_err = _cleo(f"ping --home {short_home} --timeout 0.3")
    assert code == cleo_code == 3
    assert quick.out == ""
    assert quick.err == cleo_err
    assert f"ipc://{short_home}/run/rpc.sock" in quick.err


def test_the_nua_binary_imports_no_cleo_for_a_plain_ping(short_home: Path) -> None:
    # Run as the console script does; nothing answers, so it says so and exits 3.
    probe = (
        "import sys\n"
        "from orchestrator.console.client_app import main\n"
        f"sys.argv = ['nua', 'ping', '--home', {str(short_home)!r}, '--timeout', '0.2']\n"
        "code = main()\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] == 'cleo')]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + probe],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    code, cleo_modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 3
    assert cleo_modules == []
