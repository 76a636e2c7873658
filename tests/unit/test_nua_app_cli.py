"""nua install, nua apps, nua app ...: what they send and print, without a server.

`ClientCommand.rpc` is replaced by a scripted fake worker, and the pause
between two polls by a fake clock, so that nothing sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cleo.testers.application_tester import ApplicationTester

from orchestrator.apps.archive import pack
from orchestrator.console import client_app
from orchestrator.console.client_command import ClientCommand
from orchestrator.console.commands.client.app_command import (
    AppCommand,
    StepPrinter,
    ports_text,
    uptime_text,
)
from orchestrator.errors import ExitCode
from orchestrator.rpc.client import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    NotRunningError,
    UnavailableError,
)

CONFIG = """\
[metadata]
id = "hello"
version = "1.0.0"
title = "Hello"
[run]
command = "python3 -m http.server $NUA_PORT"
env = { GREETING = "hi" }
[port.web]
[healthcheck]
http = "/"
timeout = 30
[data]
"""
CHUNK_BYTES = 4096
APP_COMMANDS = [
    "install",
    "apps",
    *(f"app {verb}" for verb in ("start", "stop", "restart", "logs", "rollback", "env", "remove")),
]
STEPS = ("unpack", "build", "ports", "configure", "start", "health", "switch")

HELLO = {
    "label": "hello",
    "app_id": "hello",
    "version": "1.0.0",
    "title": "Hello",
    "state": "running",
    "desired": "running",
    "pid": 4242,
    "ports": {"web": 20001},
    "health": "healthy",
    "uptime": 192.4,
    "release": 2,
    "previous_release": 1,
    "env": {},
    "created_at": "2026-01-02T03:04:05+00:00",
    "updated_at": "2026-01-02T03:04:05+00:00",
}
WIKI = {
    **HELLO,
    "label": "wiki",
    "app_id": "dokuwiki",
    "version": "2024.2",
    "state": "stopped",
    "desired": "stopped",
    "pid": None,
    "ports": {"web": 20002, "admin": 20003},
    "health": "unknown",
    "uptime": None,
}


class FakeWorker:
    """Stands in for `ClientCommand.rpc`: records calls, answers from a script.

    An answer is a value, an exception to raise, a function of the params, or
    a list of those given one per call (the last one repeats).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.answers: dict[str, Any] = {}

    def answer(self, method: str, *results: Any) -> None:
        self.answers[method] = list(results)

    def rpc(self, _command: ClientCommand, method: str, params: Any = None) -> Any:
        self.calls.append((method, params))
        script = self.answers[method]
        result = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(result, BaseException):
            raise result
        return result(params) if callable(result) else result

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


@pytest.fixture
def nua() -> ApplicationTester:
    return ApplicationTester(client_app.application())


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    fake = FakeWorker()
    monkeypatch.setattr(
        ClientCommand, "rpc", lambda command, method, params=None: fake.rpc(command, method, params)
    )
    return fake


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses commands took, on a fake clock that each pause moves forward."""
    taken: list[float] = []
    monkeypatch.setattr(AppCommand, "pause", lambda _self, seconds: taken.append(seconds))
    monkeypatch.setattr(AppCommand, "clock", lambda _self: 1000.0 + sum(taken))
    return taken


def run(nua: ApplicationTester, args: str, **kw: Any) -> tuple[int, str, str]:
    code = nua.execute(args, **kw)
    return code, nua.io.fetch_output(), nua.io.fetch_error()


def app_folder(parent: Path, config: str = CONFIG, payload: int = 0) -> Path:
    """An app folder; `payload` bytes of incompressible data make its archive that big."""
    folder = parent / "hello"
    folder.mkdir()
    (folder / "nua-config.toml").write_text(config)
    (folder / "index.html").write_text("<h1>hello</h1>\n")
    if payload:
        (folder / "payload.bin").write_bytes(os.urandom(payload))
    return folder


def step(name: str, state: str, seconds: float | None = None) -> dict[str, Any]:
    started = ended = None
    if state != "pending" and state != "skipped":
        started = "2026-01-02T03:04:05+00:00"
    if seconds is not None:
        ended = f"2026-01-02T03:04:{5 + seconds:09.6f}+00:00"
    return {"name": name, "state": state, "started_at": started, "ended_at": ended}


def job(state: str, *steps: dict[str, Any], kind: str = "install", **extra: Any) -> dict[str, Any]:
    """A job dict whose first steps are `steps`, the others pending."""
    named = {s["name"] for s in steps}
    rest = [step(name, "pending") for name in STEPS if name not in named]
    return {
        "id": 7,
        "kind": kind,
        "label": "hello",
        "state": state,
        "steps": [*steps, *rest],
        "error": None,
        "failed_step": None,
        "log_tail": "",
        "app": None,
        **extra,
    }


def all_done(kind: str = "install", app: dict[str, Any] | None = None) -> dict[str, Any]:
    steps = [
        step("unpack", "done", 0.1),
        step("build", "skipped"),
        step("ports", "done", 0.0),
        step("configure", "done", 0.2),
        step("start", "done", 1.0),
        step("health", "done", 0.5),
        step("switch", "done", 0.0),
    ]
    return job("succeeded", *steps, kind=kind, app=app or HELLO)


def script_upload(worker: FakeWorker) -> None:
    worker.answer("app.upload_begin", {"upload": "u1", "chunk_bytes": CHUNK_BYTES})
    worker.answer("app.upload_chunk", lambda p: {"received": p["offset"] + CHUNK_BYTES})


# -- registration ------------------------------------------------------------------------------


def test_the_app_commands_are_registered() -> None:
    assert set(APP_COMMANDS) <= set(client_app.COMMANDS)
    for name in APP_COMMANDS:
        command = client_app.COMMANDS[name]()
        assert isinstance(command, AppCommand)


@pytest.mark.parametrize("name", APP_COMMANDS)
def test_help_shows_each_command_whole(nua: ApplicationTester, name: str) -> None:
    code, out, err = run(nua, f"{name} --help")
    assert (code, err) == (0, "")
    command = client_app.COMMANDS[name]()
    assert command.description in out
    if command.help:
        last = command.help.splitlines()[-1]
        assert last.replace("<comment>", "").replace("</comment>", "") in out


# -- nua install -------------------------------------------------------------------------------


def test_install_uploads_in_chunks_and_shows_each_step(
    nua: ApplicationTester,
    worker: FakeWorker,
    pauses: list[float],
    short_home: Path,
    tmp_path: Path,
) -> None:
    folder = app_folder(tmp_path, payload=3 * CHUNK_BYTES)
    script_upload(worker)
    worker.answer("app.install", job("running", step("unpack", "running")))
    worker.answer(
        "job.get",
        job("running", step("unpack", "running")),
        job(
            "running",
            step("unpack", "done", 0.1),
            step("build", "skipped"),
            step("ports", "running"),
        ),
        all_done(),
    )
    code, out, err = run(
        nua, f"install {folder} --label hello --env A=1 --env B= --home {short_home}"
    )
    assert (code, err) == (0, "")

    begin = worker.calls[0]
    chunks = [params for method, params in worker.calls if method == "app.upload_chunk"]
    assert begin[0] == "app.upload_begin"
    assert len(chunks) >= 3
    archive = b"".join(base64.b64decode(c["data"]) for c in chunks)
    assert [c["offset"] for c in chunks] == list(range(0, len(archive), CHUNK_BYTES))
    assert all(len(base64.b64decode(c["data"])) <= CHUNK_BYTES for c in chunks)
    assert {c["upload"] for c in chunks} == {"u1"}
    assert begin[1] == {"size": len(archive), "sha256": hashlib.sha256(archive).hexdigest()}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        packed = {Path(m.name).name: m for m in tar.getmembers()}
        payload = tar.extractfile(packed["payload.bin"])
        assert payload is not None
        assert payload.read() == (folder / "payload.bin").read_bytes()
    assert "nua-config.toml" in packed
    assert archive == pack(folder)

    assert worker.calls[len(chunks) + 1] == (
        "app.install",
        {"upload": "u1", "label": "hello", "env": {"A": "1", "B": ""}},
    )
    assert worker.methods()[len(chunks) + 2 :] == ["job.get"] * 3
    assert worker.calls[-1] == ("job.get", {"id": 7})
    assert pauses == [0.2, 0.2, 0.2]

    lines = out.splitlines()
    assert lines[0].startswith(f"uploaded hello 1.0.0 from {folder}: ")
    assert lines[1:] == [
        "[1/7] unpack ... done (0.1s)",
        "[2/7] build ... skipped",
        "[3/7] ports ... done (0.0s)",
        "[4/7] configure ... done (0.2s)",
        "[5/7] start ... done (1.0s)",
        "[6/7] health ... done (0.5s)",
        "[7/7] switch ... done (0.0s)",
        "installed hello (hello 1.0.0) on port web=20001",
    ]


def test_install_sends_no_label_or_env_unless_given_and_says_upgraded(
    nua: ApplicationTester,
    worker: FakeWorker,
    pauses: list[float],
    short_home: Path,
    tmp_path: Path,
) -> None:
    folder = app_folder(tmp_path)
    script_upload(worker)
    upgraded = {**HELLO, "version": "1.1.0", "ports": {"web": 20001, "admin": 20002}}
    worker.answer("app.install", all_done(kind="upgrade", app=upgraded))
    code, out, _ = run(nua, f"install {folder} --home {short_home}")
    assert code == 0
    assert ("app.install", {"upload": "u1"}) in worker.calls
    assert "job.get" not in worker.methods()
    assert pauses == []
    assert out.splitlines()[-1] == "upgraded hello (hello 1.1.0) on ports web=20001,admin=20002"


def test_install_json_prints_the_final_job_only(
    nua: ApplicationTester,
    worker: FakeWorker,
    pauses: list[float],
    short_home: Path,
    tmp_path: Path,
) -> None:
    folder = app_folder(tmp_path)
    script_upload(worker)
    worker.answer("app.install", job("running", step("unpack", "running")))
    worker.answer("job.get", all_done())
    code, out, err = run(nua, f"install {folder} --json --home {short_home}")
    assert (code, err) == (0, "")
    assert json.loads(out) == all_done()


def test_a_failed_install_names_the_step_and_shows_the_log_tail(
    nua: ApplicationTester,
    worker: FakeWorker,
    pauses: list[float],
    short_home: Path,
    tmp_path: Path,
) -> None:
    folder = app_folder(tmp_path)
    script_upload(worker)
    worker.answer("app.install", job("running", step("unpack", "running")))
    failed = job(
        "failed",
        step("unpack", "done", 0.1),
        step("build", "failed", 2.5),
        error="build.sh exited with status 3",
        failed_step="build",
        log_tail="compiling...\n<boom> missing gcc\n",
    )
    worker.answer(
        "job.get", job("running", step("unpack", "done", 0.1), step("build", "running")), failed
    )
    code, out, err = run(nua, f"install {folder} --home {short_home}")
    assert code == ExitCode.ERROR == 1
    assert out.splitlines()[1:] == ["[1/7] unpack ... done (0.1s)", "[2/7] build ... failed (2.5s)"]
    assert err == (
        "error: install of hello failed at step build: build.sh exited with status 3\n"
        "  the end of its log:\n"
        "    compiling...\n"
        "    <boom> missing gcc\n"
    )


def test_a_failed_install_with_json_prints_the_job_and_exits_1(
    nua: ApplicationTester,
    worker: FakeWorker,
    pauses: list[float],
    short_home: Path,
    tmp_path: Path,
) -> None:
    folder = app_folder(tmp_path)
    script_upload(worker)
    failed = job(
        "failed", step("unpack", "failed", 0.0), error="absolute path /etc/x", failed_step="unpack"
    )
    worker.answer("app.install", failed)
    code, out, err = run(nua, f"install {folder} --json --home {short_home}")
    assert code == 1
    assert json.loads(out) == failed
    assert err == "error: install of hello failed at step unpack: absolute path /etc/x\n"


def test_install_stops_watching_when_wait_runs_out(
    nua: ApplicationTester,
    worker: FakeWorker,
    pauses: list[float],
    short_home: Path,
    tmp_path: Path,
) -> None:
    folder = app_folder(tmp_path)
    script_upload(worker)
    worker.answer(
        "app.install", job("running", step("unpack", "done", 0.1), step("build", "running"))
    )
    worker.answer("job.get", job("running", step("unpack", "done", 0.1), step("build", "running")))
    code, out, err = run(nua, f"install {folder} --wait 1 --home {short_home}")
    assert code == 1
    assert len(pauses) == 5  # 5 x 0.2 s
    assert out.splitlines()[1:] == ["[1/7] unpack ... done (0.1s)", "[2/7] build ..."]
    assert err == (
        "error: the install of hello (job 7) is still running after 1s and goes on in the "
        "orchestrator; `nua call job.get '{\"id\": 7}'` shows how it ends\n"
    )


def test_ctrl_c_stops_watching_an_install_not_the_install(
    nua: ApplicationTester,
    worker: FakeWorker,
    pauses: list[float],
    short_home: Path,
    tmp_path: Path,
) -> None:
    folder = app_folder(tmp_path)
    script_upload(worker)
    worker.answer("app.install", job("running", step("unpack", "running")))
    worker.answer("job.get", KeyboardInterrupt())
    code, out, err = run(nua, f"install {folder} --home {short_home}")
    assert code == 130
    assert out.splitlines()[1:] == ["[1/7] unpack ..."]
    assert err == (
        "stopped watching; the install of hello (job 7) goes on in the orchestrator: "
        "`nua call job.get '{\"id\": 7}'` shows how it ends\ninterrupted\n"
    )


@pytest.mark.parametrize(
    ("config", "key"),
    [
        (CONFIG.replace('id = "hello"', 'id = "Hello World"'), "metadata.id"),
        (CONFIG.replace('version = "1.0.0"\n', ""), "metadata.version"),
        (
            CONFIG.replace('command = "python3 -m http.server $NUA_PORT"', "command = 5"),
            "run.command",
        ),
    ],
)
def test_install_of_an_invalid_config_names_the_key_and_sends_nothing(
    nua: ApplicationTester,
    worker: FakeWorker,
    short_home: Path,
    tmp_path: Path,
    config: str,
    key: str,
) -> None:
    folder = app_folder(tmp_path, config=config)
    code, out, err = run(nua, f"install {folder} --home {short_home}")
    assert code == ExitCode.ERROR == 1
    assert out == ""
    assert err.startswith("error: ")
    assert key in err
    assert worker.calls == []


def test_install_of_a_missing_folder_or_config_sends_nothing(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, tmp_path: Path
) -> None:
    code, out, err = run(nua, f"install {tmp_path / 'nowhere'} --home {short_home}")
    assert (code, out) == (1, "")
    assert "nowhere" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(nua, f"install {empty} --home {short_home}")
    assert (code, out) == (1, "")
    assert "nua-config.toml" in err
    assert worker.calls == []


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ("--env GREETING", "error: --env 'GREETING' is not KEY=VALUE (env)"),
        ("--env =x", "error: --env '=x': '' is not an environment variable name"),
        ("--env 1A=x", "error: --env '1A=x': '1A' is not an environment variable name"),
        ("--env A=1 --env A=2", "error: --env: A is given twice (env)"),
    ],
)
def test_install_env_errors_are_usage_errors(
    nua: ApplicationTester,
    worker: FakeWorker,
    short_home: Path,
    tmp_path: Path,
    env: str,
    says: str,
) -> None:
    folder = app_folder(tmp_path)
    code, out, err = run(nua, f"install {folder} {env} --home {short_home}")
    assert code == ExitCode.USAGE == 2
    assert out == ""
    assert err.startswith(says)
    assert worker.calls == []


@pytest.mark.parametrize("wait", ["soon", "0", "-5", "inf"])
def test_install_wait_must_be_seconds(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, tmp_path: Path, wait: str
) -> None:
    code, _, err = run(nua, f"install {app_folder(tmp_path)} --wait={wait} --home {short_home}")
    assert code == 2
    assert f"--wait {wait!r} is not a number of seconds (wait)" in err
    assert worker.calls == []


def test_install_when_not_running_exits_3_and_says_the_change_may_be_unknown(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, tmp_path: Path
) -> None:
    worker.answer("app.upload_begin", NotRunningError("ipc:///x/rpc.sock", 0.1))
    code, out, err = run(nua, f"install {app_folder(tmp_path)} --home {short_home}")
    assert (code, out) == (ExitCode.NOT_RUNNING, "")
    assert "no answer from ipc:///x/rpc.sock within 0.1s" in err
    assert "check whether its change was applied" in err


def test_install_of_a_taken_label_is_a_conflict(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, tmp_path: Path
) -> None:
    script_upload(worker)
    taken = ConflictError(
        -32004, "label hello runs app other", {"name": "conflict", "field": "label"}
    )
    worker.answer("app.install", taken)
    code, out, err = run(nua, f"install {app_folder(tmp_path)} --home {short_home}")
    assert code == ExitCode.CONFLICT
    assert out.startswith("uploaded hello 1.0.0 from ")
    assert err == "error: label hello runs app other (label)\n"


# -- nua apps ----------------------------------------------------------------------------------


def test_apps_is_a_table(nua: ApplicationTester, worker: FakeWorker, short_home: Path) -> None:
    worker.answer("app.list", [HELLO, WIKI])
    code, out, err = run(nua, f"apps --home {short_home}")
    assert (code, err) == (0, "")
    assert out == (
        "LABEL  APP       VERSION  STATE    PORTS                  HEALTH   UPTIME\n"
        "hello  hello     1.0.0    running  web=20001              healthy  3m12s\n"
        "wiki   dokuwiki  2024.2   stopped  web=20002,admin=20003  unknown  -\n"
    )
    assert worker.calls == [("app.list", None)]


def test_apps_json_and_empty(nua: ApplicationTester, worker: FakeWorker, short_home: Path) -> None:
    worker.answer("app.list", [HELLO, WIKI])
    code, out, _ = run(nua, f"apps --json --home {short_home}")
    assert code == 0
    assert json.loads(out) == [HELLO, WIKI]
    worker.answer("app.list", [])
    assert run(nua, f"apps --home {short_home}") == (
        0,
        "no apps installed (nua install PATH installs one)\n",
        "",
    )
    assert run(nua, f"apps --json --home {short_home}") == (0, "[]\n", "")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (59.9, "59s"), (60, "1m00s"), (192.4, "3m12s"),
     (3600, "1h00m"), (7500, "2h05m"), (86400 * 3 + 3600 * 4 + 5, "3d04h")],
)  # fmt: skip
def test_uptime_text(seconds: float | None, text: str) -> None:
    assert uptime_text(seconds) == text


def test_ports_text() -> None:
    assert ports_text({}) == "-"
    assert ports_text(None) == "-"
    assert ports_text({"web": 20001, "admin": 20002}) == "web=20001,admin=20002"


# -- nua app start|stop|restart ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "app", "line"),
    [
        ("start", HELLO, "hello: running (pid 4242, web=20001, healthy, up 3m12s)"),
        ("restart", {**HELLO, "uptime": 1.2, "health": "unknown"},
         "hello: running (pid 4242, web=20001, unknown, up 1s)"),
        ("stop", {**HELLO, "state": "stopped", "desired": "stopped", "pid": None, "uptime": None},
         "hello: stopped (web=20001)"),
        ("start", {**HELLO, "state": "backoff", "pid": None, "uptime": None},
         "hello: backoff (web=20001, wanted running)"),
    ],
)  # fmt: skip
def test_app_start_stop_restart_print_the_state(
    nua: ApplicationTester,
    worker: FakeWorker,
    short_home: Path,
    verb: str,
    app: dict[str, Any],
    line: str,
) -> None:
    worker.answer(f"app.{verb}", app)
    assert run(nua, f"app {verb} hello --home {short_home}") == (0, line + "\n", "")
    assert worker.calls == [(f"app.{verb}", {"label": "hello"})]
    assert nua.execute(f"app {verb} hello --json --home {short_home}") == 0
    assert json.loads(nua.io.fetch_output()) == app


def test_an_app_that_does_not_start_is_an_error(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer(
        "app.start",
        UnavailableError(
            -32006, "app hello did not start: exited at once", {"name": "unavailable"}
        ),
    )
    assert run(nua, f"app start hello --home {short_home}") == (
        1,
        "",
        "error: app hello did not start: exited at once\n",
    )


UNKNOWN = NotFoundError(-32001, "no app labelled 'nope'", {"name": "not_found", "field": "label"})


@pytest.mark.parametrize(
    ("args", "method"),
    [
        ("app start nope", "app.start"),
        ("app stop nope", "app.stop"),
        ("app restart nope", "app.restart"),
        ("app logs nope", "app.logs"),
        ("app rollback nope", "app.rollback"),
        ("app env nope", "app.env"),
        ("app env nope A=1", "app.env"),
        ("app remove nope", "app.remove"),
    ],
)
def test_an_unknown_label_exits_4(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, args: str, method: str
) -> None:
    worker.answer(method, UNKNOWN)
    assert run(nua, f"{args} --home {short_home}") == (
        ExitCode.NOT_FOUND,
        "",
        "error: no app labelled 'nope' (label)\n",
    )


@pytest.mark.parametrize(
    ("args", "method", "changes"),
    [
        ("apps", "app.list", False),
        ("app start hello", "app.start", True),
        ("app logs hello", "app.logs", False),
        ("app env hello", "app.env", False),
        ("app env hello A=1", "app.env", True),
        ("app env hello --unset A", "app.env", True),
        ("app remove hello", "app.remove", True),
    ],
)
def test_not_running_exits_3(
    nua: ApplicationTester,
    worker: FakeWorker,
    short_home: Path,
    args: str,
    method: str,
    changes: bool,
) -> None:
    worker.answer(method, NotRunningError("ipc:///x/rpc.sock", 0.5))
    code, out, err = run(nua, f"{args} --home {short_home}")
    assert (code, out) == (ExitCode.NOT_RUNNING, "")
    assert err.startswith("error: the orchestrator is not running or not answering: ")
    assert ("check whether its change was applied" in err) == changes


# -- nua app logs ------------------------------------------------------------------------------


def test_app_logs_prints_the_last_lines(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("app.logs", {"text": "one\n<two>\n", "offset": 120})
    assert run(nua, f"app logs hello --home {short_home}") == (0, "one\n<two>\n", "")
    assert run(nua, f"app logs hello --stderr --lines 5 --home {short_home}")[0] == 0
    assert worker.calls == [
        ("app.logs", {"label": "hello", "stderr": False, "lines": 100}),
        ("app.logs", {"label": "hello", "stderr": True, "lines": 5}),
    ]
    code, out, _ = run(nua, f"app logs hello --json --home {short_home}")
    assert code == 0
    assert json.loads(out) == {"text": "one\n<two>\n", "offset": 120}


@pytest.mark.parametrize("lines", ["ten", "0", "-1", "10001"])
def test_app_logs_lines_must_be_a_count(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, lines: str
) -> None:
    code, _, err = run(nua, f"app logs hello --lines={lines} --home {short_home}")
    assert code == 2
    assert f"--lines {lines!r} is not a number of lines (1..10000) (lines)" in err
    assert worker.calls == []


def test_app_logs_follow_polls_from_the_offset_until_ctrl_c(
    nua: ApplicationTester, worker: FakeWorker, pauses: list[float], short_home: Path
) -> None:
    worker.answer(
        "app.logs",
        {"text": "old line\n", "offset": 100},
        {"text": "", "offset": 100},
        {"text": "new line\n", "offset": 109},
        KeyboardInterrupt(),
    )
    code, out, err = run(nua, f"app logs hello -f --stderr --home {short_home}")
    assert (code, out, err) == (0, "old line\nnew line\n", "")
    assert worker.calls == [
        ("app.logs", {"label": "hello", "stderr": True, "lines": 100}),
        ("app.logs", {"label": "hello", "stderr": True, "offset": 100}),
        ("app.logs", {"label": "hello", "stderr": True, "offset": 100}),
        ("app.logs", {"label": "hello", "stderr": True, "offset": 109}),
    ]
    assert pauses == [0.5, 0.5, 0.5]


def test_app_logs_follow_exits_3_when_the_orchestrator_goes_away(
    nua: ApplicationTester, worker: FakeWorker, pauses: list[float], short_home: Path
) -> None:
    worker.answer(
        "app.logs",
        {"text": "old line\n", "offset": 100},
        NotRunningError("ipc:///x/rpc.sock", 5.0),
    )
    code, out, err = run(nua, f"app logs hello -f --home {short_home}")
    assert (code, out) == (3, "old line\n")
    assert "no answer from ipc:///x/rpc.sock within 5s" in err
    assert "change was applied" not in err


def test_app_logs_follow_json_prints_one_object_a_line(
    nua: ApplicationTester, worker: FakeWorker, pauses: list[float], short_home: Path
) -> None:
    worker.answer(
        "app.logs",
        {"text": "a\n", "offset": 2},
        {"text": "b\n", "offset": 4},
        KeyboardInterrupt(),
    )
    code, out, _ = run(nua, f"app logs hello -f --json --home {short_home}")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"text": "a\n", "offset": 2},
        {"text": "b\n", "offset": 4},
    ]


# -- nua app rollback --------------------------------------------------------------------------


def test_app_rollback_follows_its_job(
    nua: ApplicationTester, worker: FakeWorker, pauses: list[float], short_home: Path
) -> None:
    previous = {**HELLO, "version": "0.9.0", "release": 1, "previous_release": 2}
    running = job("running", step("configure", "running"), kind="rollback")
    running["steps"] = [
        s for s in running["steps"] if s["name"] in ("configure", "start", "health")
    ]
    done = {
        **running,
        "state": "succeeded",
        "app": previous,
        "steps": [
            step("configure", "done", 0.1),
            step("start", "done", 1.0),
            step("health", "done", 0.3),
        ],
    }
    worker.answer("app.rollback", running)
    worker.answer("job.get", done)
    code, out, err = run(nua, f"app rollback hello --home {short_home}")
    assert (code, err) == (0, "")
    assert out == (
        "[1/3] configure ... done (0.1s)\n"
        "[2/3] start ... done (1.0s)\n"
        "[3/3] health ... done (0.3s)\n"
        "rolled back hello to 0.9.0 (release 1)\n"
    )
    assert worker.calls == [("app.rollback", {"label": "hello"}), ("job.get", {"id": 7})]
    assert nua.execute(f"app rollback hello --json --home {short_home}") == 0
    assert json.loads(nua.io.fetch_output()) == done


def test_app_rollback_failure_and_no_previous_release(
    nua: ApplicationTester, worker: FakeWorker, pauses: list[float], short_home: Path
) -> None:
    failed = job(
        "failed",
        step("configure", "done", 0.1),
        step("start", "failed", 0.4),
        kind="rollback",
        error="exited at once",
        failed_step="start",
        log_tail="Traceback\n",
    )
    worker.answer("app.rollback", failed)
    code, out, err = run(nua, f"app rollback hello --home {short_home}")
    assert code == 1
    assert "[2/7] start ... failed (0.4s)\n" in out
    assert err == (
        "error: rollback of hello failed at step start: exited at once\n"
        "  the end of its log:\n"
        "    Traceback\n"
    )
    none = ConflictError(-32004, "hello has no previous release", {"name": "conflict"})
    worker.answer("app.rollback", none)
    assert run(nua, f"app rollback hello --home {short_home}") == (
        5,
        "",
        "error: hello has no previous release\n",
    )


# -- nua app env -------------------------------------------------------------------------------


def test_app_env_shows_the_overrides(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("app.env", {"label": "hello", "env": {"B": "2", "A": "x=y"}})
    assert run(nua, f"app env hello --home {short_home}") == (0, "A=x=y\nB=2\n", "")
    assert worker.calls == [("app.env", {"label": "hello"})]
    code, out, _ = run(nua, f"app env hello --json --home {short_home}")
    assert code == 0
    assert json.loads(out) == {"label": "hello", "env": {"B": "2", "A": "x=y"}}
    worker.answer("app.env", {"label": "hello", "env": {}})
    assert run(nua, f"app env hello --home {short_home}") == (
        0,
        "hello has no environment overrides\n(nua app env hello KEY=VALUE sets one)\n",
        "",
    )


def test_app_env_sets_and_unsets(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    worker.answer("app.env", {"label": "hello", "env": {"A": "1", "B": "two words"}})
    code, out, err = run(
        nua, f"app env hello A=1 'B=two words' --unset C --unset D --home {short_home}"
    )
    assert (code, err) == (0, "")
    assert out == "A=1\nB=two words\napplies at the next restart: nua app restart hello\n"
    assert worker.calls == [
        ("app.env", {"label": "hello", "set": {"A": "1", "B": "two words"}, "unset": ["C", "D"]})
    ]
    worker.answer("app.env", {"label": "hello", "env": {}})
    code, out, _ = run(nua, f"app env hello --unset A --home {short_home}")
    assert code == 0
    assert out == (
        "hello has no environment overrides\napplies at the next restart: nua app restart hello\n"
    )
    assert worker.calls[-1] == ("app.env", {"label": "hello", "unset": ["A"]})


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("A", "error: assignment 'A' is not KEY=VALUE (assignment)"),
        ("A=1 A=2", "error: assignment: A is given twice (assignment)"),
        ("NOT-A-NAME=1", "error: assignment 'NOT-A-NAME=1': 'NOT-A-NAME' is not an environment"),
        ("--unset 9X", "error: --unset '9X': '9X' is not an environment variable name"),
        ("A=1 --unset A", "error: A is both set and unset (unset)"),
    ],
)
def test_app_env_usage_errors(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path, args: str, says: str
) -> None:
    code, out, err = run(nua, f"app env hello {args} --home {short_home}")
    assert (code, out) == (2, "")
    assert err.startswith(says)
    assert worker.calls == []


def test_app_env_refused_by_the_worker(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    refused = InvalidArgumentError(
        -32003, "NUA_PORT: NUA_* variables are set by the orchestrator",
        {"name": "invalid_argument", "field": "env"},
    )  # fmt: skip
    worker.answer("app.env", refused)
    code, _, err = run(nua, f"app env hello NUA_PORT=1 --home {short_home}")
    assert code == ExitCode.USAGE
    assert err == "error: NUA_PORT: NUA_* variables are set by the orchestrator (env)\n"


# -- nua app remove ----------------------------------------------------------------------------


def test_app_remove_keeps_the_data_unless_purge(
    nua: ApplicationTester, worker: FakeWorker, short_home: Path
) -> None:
    kept = {"label": "hello", "removed": True, "data_kept": "/var/lib/nua/apps/hello/data"}
    worker.answer("app.remove", kept)
    assert run(nua, f"app remove hello --home {short_home}") == (
        0,
        "removed hello; its data is kept in /var/lib/nua/apps/hello/data\n",
        "",
    )
    assert nua.execute(f"app remove hello --json --home {short_home}") == 0
    assert json.loads(nua.io.fetch_output()) == kept
    worker.answer("app.remove", {"label": "hello", "removed": True, "data_kept": None})
    assert run(nua, f"app remove hello --purge --home {short_home}") == (
        0,
        "removed hello and purged its data\n",
        "",
    )
    assert run(nua, f"app remove hello --home {short_home}") == (
        0,
        "removed hello (it had no data folder)\n",
        "",
    )
    assert [params for _, params in worker.calls] == [
        {"label": "hello", "purge": False},
        {"label": "hello", "purge": False},
        {"label": "hello", "purge": True},
        {"label": "hello", "purge": False},
    ]


# -- the step printer --------------------------------------------------------------------------


def test_step_printer_begins_a_line_when_a_step_starts_and_ends_it_when_it_ends() -> None:
    written: list[str] = []
    printer = StepPrinter(written.append)

    def steps(*done: dict[str, Any]) -> list[dict[str, Any]]:
        return list(job("running", *done)["steps"])

    printer.update(steps())
    assert written == []
    printer.update(steps(step("unpack", "running")))
    printer.update(steps(step("unpack", "running")))
    assert "".join(written) == "[1/7] unpack ..."
    # Two steps ended between two polls: both are shown, in order.
    printer.update(steps(step("unpack", "done", 0.25), step("build", "done", 3.0)))
    assert "".join(written) == "[1/7] unpack ... done (0.2s)\n[2/7] build ... done (3.0s)\n"
    written.clear()
    printer.update(
        steps(step("unpack", "done"), step("build", "done"), step("ports", "failed", 0.0),
              step("configure", "skipped"))
    )  # fmt: skip
    assert "".join(written) == "[3/7] ports ... failed (0.0s)\n"
    printer.close()
    assert "".join(written) == "[3/7] ports ... failed (0.0s)\n"


def test_step_printer_close_ends_a_begun_line() -> None:
    written: list[str] = []
    printer = StepPrinter(written.append)
    printer.update(job("running", step("unpack", "running"))["steps"])
    printer.close()
    printer.close()
    assert "".join(written) == "[1/7] unpack ...\n"
