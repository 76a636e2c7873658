"""Drive a real nua-orchestrator (real supervisord, sockets, SQLite) in its own home."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from orchestrator.host.locations import Locations, resolve
from orchestrator.rpc.client import RpcClient
from orchestrator.supervisor import control
from tests.support.polling import wait_for

BIN = Path(sys.executable).parent
# Fast sentinel and short timeouts so that failure scenarios play out in seconds.
FAST_SETTINGS = {
    "NUA_SENTINEL_INTERVAL": "0.25",
    "NUA_SENTINEL_PING_TIMEOUT": "0.5",
    "NUA_SENTINEL_FAILURES": "2",
    "NUA_SENTINEL_BACKOFF_INITIAL": "1",
    "NUA_SENTINEL_BACKOFF_MAX": "4",
    "NUA_SENTINEL_STABLE_AFTER": "30",
    "NUA_RPC_STOP_TIMEOUT": "1",
    "NUA_SUPERVISOR_START_TIMEOUT": "20",
    "NUA_SUPERVISOR_STOP_TIMEOUT": "20",
}


def _app_ports() -> dict[str, str]:
    """A port range of its own for each pytest-xdist worker.

    Orchestrators of tests running side by side would otherwise both give their
    first app 20000 (free until one of them binds it) and one app could not serve.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = 20000 + 200 * (int(worker) if worker.isdigit() else 0)
    return {"NUA_APPS_PORT_MIN": str(low), "NUA_APPS_PORT_MAX": str(low + 199)}


@dataclass
class Result:
    """A finished CLI run."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Orchestrator:
    """One orchestrator home, and the commands and processes that belong to it."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NUA_")}
        self.env.update(FAST_SETTINGS)
        self.env.update(_app_ports())
        self.env["NUA_HOME"] = str(home)
        self.env.update(extra_env or {})
        self.locations: Locations = resolve(home)

    # -- CLIs ---------------------------------------------------------------------

    def run(
        self,
        *args: str,
        cli: str = "nua-orchestrator",
        timeout: float = 60,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> Result:
        done = subprocess.run(
            [str(BIN / cli), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, **kw: Any) -> Result:
        result = self.run("start", **kw)
        assert result.returncode == 0, f"start failed: {result.stdout}{result.stderr}"
        return result

    def stop(self, **kw: Any) -> Result:
        result = self.run("stop", **kw)
        assert result.returncode == 0, f"stop failed: {result.stdout}{result.stderr}"
        return result

    def status(self) -> Result:
        return self.run("status", "--json")

    def supervisorctl(self, *args: str) -> Result:
        return self.run("-c", str(self.locations.supervisor_conf), *args, cli="supervisorctl")

    # -- live state ---------------------------------------------------------------

    def supervisord_pid(self) -> int:
        return int(self.locations.supervisor_pidfile.read_text().strip())

    def programs(self) -> dict[str, control.ProgramInfo]:
        proxy = control.connect(self.locations.supervisor_socket, timeout=5)
        return {p.name: p for p in control.programs(proxy)}

    def program(self, name: str) -> control.ProgramInfo:
        return self.programs()[name]

    def ping(self, timeout: float = 2.0) -> Any:
        return RpcClient(self.locations.rpc_endpoint, timeout=timeout, retries=0).call(
            "system.ping"
        )

    def wait_state(self, name: str, state: str, timeout: float = 15.0) -> control.ProgramInfo:
        return wait_for(
            lambda: (p := self.program(name)).state == state and p,
            timeout=timeout,
            what=f"{name} to be {state}",
        )

    def processes(self) -> list[psutil.Process]:
        """Every live process that carries this home in its environment."""
        return processes_with_home(self.home)

    def log(self, program: str) -> str:
        path = self.locations.logs / f"{program}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- teardown -----------------------------------------------------------------

    def kill_everything(self) -> list[int]:
        """Stop, then end by pid whatever is left; returns the pids that had leaked."""
        if self.locations.runtime.exists():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.run("stop", timeout=60)
        leaked = self.processes()
        kill_and_reap(leaked)
        return [p.pid for p in leaked]


def processes_with_home(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if proc.environ().get("NUA_HOME") == str(home):
                found.append(proc)
    return found


def processes_in(folder: Path) -> list[psutil.Process]:
    """Live processes whose working directory is `folder` or below it.

    Compared path-wise: the homes of tests running side by side share prefixes
    (/tmp/nuaab and /tmp/nuaabcd), and a string prefix would catch the other's.
    """
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info["cwd"]
        if cwd and proc.pid != os.getpid() and Path(cwd).is_relative_to(folder):
            found.append(proc)
    return found


def kill_processes_in(folder: Path) -> None:
    """Kill (and reap) what runs in `folder`: apps have their own environment, no NUA_HOME."""
    kill_and_reap(processes_in(folder))


def kill_and_reap(procs: list[psutil.Process]) -> None:
    """SIGKILL each (after SIGCONT, so a stopped one dies at once) and wait for them."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGCONT)
            proc.kill()
    psutil.wait_procs(procs, timeout=10)
