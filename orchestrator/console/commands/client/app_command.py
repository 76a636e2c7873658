"""The base of `nua install`, `nua apps` and `nua app ...`: how apps and jobs are shown.

An install or a rollback runs as a job in the worker; the command follows it
with `job.get`, printing each step as it starts and ends
(`[1/7] unpack ... done (0.1s)`), until it succeeds, fails or `--wait` runs out.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cleo.helpers import option
from cleo.io.outputs.output import Type as OutputType

from orchestrator.console.client_command import ClientCommand, CommandError, UsageError
from orchestrator.errors import ExitCode

# The names the worker accepts for environment variables.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_POLL_SECONDS = 0.2
DEFAULT_WAIT = "600"
WAIT_OPTION = option(
    "wait",
    None,
    "Seconds to follow the job before giving up watching it (it goes on).",
    flag=False,
    default=DEFAULT_WAIT,
)


def parse_assignments(words: Iterable[str], what: str) -> dict[str, str]:
    """`KEY=VALUE` words as a dict; a malformed or repeated one is a usage error naming it."""
    env: dict[str, str] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            raise UsageError(f"{what} {word!r} is not KEY=VALUE", field=what.lstrip("-"))
        check_env_name(key, word, what)
        if key in env:
            raise UsageError(f"{what}: {key} is given twice", field=what.lstrip("-"))
        env[key] = value
    return env


def check_env_name(key: str, word: str, what: str) -> None:
    """A usage error naming `word` unless `key` is an environment variable name."""
    if not ENV_NAME.match(key):
        raise UsageError(
            f"{what} {word!r}: {key!r} is not an environment variable name "
            "(letters, digits and _, not starting with a digit)",
            field=what.lstrip("-"),
        )


def ports_text(ports: Mapping[str, Any] | None) -> str:
    """`web=20001,admin=20002`, or `-` for an app without ports."""
    if not ports:
        return "-"
    return ",".join(f"{name}={port}" for name, port in ports.items())


def uptime_text(seconds: float | None) -> str:
    """`45s`, `3m12s`, `2h05m`, `3d04h`; `-` when the app is not up."""
    if seconds is None or seconds < 0:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def size_text(size: int) -> str:
    """`812 B`, `12.1 KiB`, `3.4 MiB`."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def step_seconds(step: Mapping[str, Any]) -> float | None:
    """How long a step took, from its ISO timestamps (None when one is missing)."""
    try:
        started = datetime.fromisoformat(step["started_at"])
        ended = datetime.fromisoformat(step["ended_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return max((ended - started).total_seconds(), 0.0)


@dataclass
class StepPrinter:
    """Prints a job's steps in order as they start and end: `[1/7] unpack ... done (0.1s)`.

    A step's line is begun when it starts and finished when it ends, so a slow
    build shows `[2/7] build ...` while it runs. Steps after a failed one are
    not shown.
    """

    write: Callable[[str], None]
    begun: int = 0  # steps whose line was begun
    ended: int = 0  # steps whose line was finished
    stopped: bool = False  # a step failed: nothing more to show

    def update(self, steps: list[dict[str, Any]]) -> None:
        total = len(steps)
        while not self.stopped and self.ended < total:
            step = steps[self.ended]
            state = step.get("state")
            if state == "pending":
                return
            if self.begun == self.ended:
                self.write(f"[{self.ended + 1}/{total}] {step.get('name')} ...")
                self.begun += 1
            if state == "running":
                return
            self.write(f" {self._outcome(step)}\n")
            self.ended += 1
            self.stopped = state == "failed"

    def close(self) -> None:
        """End a begun line (the job ended, or we stop watching it)."""
        if self.begun > self.ended:
            self.write("\n")
            self.ended = self.begun

    @staticmethod
    def _outcome(step: Mapping[str, Any]) -> str:
        state = str(step.get("state"))
        seconds = step_seconds(step)
        if state == "skipped" or seconds is None:
            return state
        return f"{state} ({seconds:.1f}s)"


class AppCommand(ClientCommand):
    """A command on installed apps (the `app.*` RPC namespace)."""

    def pause(self, seconds: float) -> None:
        """Wait between two polls (tests replace it, so that they never sleep)."""
        time.sleep(seconds)

    def clock(self) -> float:
        """Seconds on a monotonic clock, for deadlines (tests replace it with pause)."""
        return time.monotonic()

    def out_partial(self, text: str) -> None:
        """Print text without ending the line (a step that has begun)."""
        self.io.write(text, type=OutputType.RAW)

    def err_line(self, text: str) -> None:
        self.io.write_error_line(text, type=OutputType.RAW)

    def state_line(self, app: Mapping[str, Any]) -> str:
        """`hello: running (pid 4242, web=20001, healthy, up 3m12s)`."""
        state = app.get("state")
        details = []
        if app.get("pid"):
            details.append(f"pid {app['pid']}")
        if app.get("ports"):
            details.append(ports_text(app["ports"]))
        if state == "running":
            if app.get("health"):
                details.append(str(app["health"]))
            if app.get("uptime") is not None:
                details.append(f"up {uptime_text(app['uptime'])}")
        if app.get("desired") and app.get("desired") != state and state != "starting":
            details.append(f"wanted {app['desired']}")
        shown = f" ({', '.join(details)})" if details else ""
        return f"{app.get('label')}: {state}{shown}"

    def write_app_state(self, app: Mapping[str, Any]) -> None:
        """The app as JSON with --json, else its state line."""
        if self.json_wanted():
            self.write_json(app)
        else:
            self.out(self.state_line(app))


class JobCommand(AppCommand):
    """A command that starts a job in the worker (install, rollback) and follows it."""

    def wait_seconds(self) -> float:
        """The --wait option in seconds, or a usage error."""
        raw = self.option("wait")
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            seconds = -1.0
        if not 0 < seconds < float("inf"):
            raise UsageError(f"--wait {raw!r} is not a number of seconds", field="wait")
        return seconds

    def follow(self, job: dict[str, Any], wait: float) -> dict[str, Any]:
        """Poll `job.get` until the job ends, printing its steps; return the ended job."""
        printer = None if self.json_wanted() else StepPrinter(self.out_partial)
        deadline = self.clock() + wait
        try:
            while True:
                if printer is not None:
                    printer.update(job.get("steps") or [])
                if job.get("state") != "running":
                    return job
                if self.clock() >= deadline:
                    raise CommandError(
                        f"the {self.job_name(job)} is still running after {wait:g}s and goes on "
                        f"in the orchestrator; {self.job_hint(job)} shows how it ends"
                    )
                self.pause(JOB_POLL_SECONDS)
                job = self.rpc("job.get", {"id": job["id"]})
        except KeyboardInterrupt:
            if printer is not None:
                printer.close()
            self.err_line(
                f"stopped watching; the {self.job_name(job)} goes on in the orchestrator: "
                f"{self.job_hint(job)} shows how it ends"
            )
            raise
        finally:
            if printer is not None:
                printer.close()

    @staticmethod
    def job_name(job: Mapping[str, Any]) -> str:
        """`install of hello (job 7)`."""
        return f"{job.get('kind')} of {job.get('label')} (job {job.get('id')})"

    @staticmethod
    def job_hint(job: Mapping[str, Any]) -> str:
        params = json.dumps({"id": job.get("id")})
        return f"`nua call job.get '{params}'`"

    def job_failed(self, job: Mapping[str, Any]) -> int:
        """`error: install of LABEL failed at step STEP: ERROR`, then the log's end, indented."""
        what = f"{job.get('kind')} of {job.get('label')}"
        error = job.get("error") or f"the job ended {job.get('state')}"
        step = job.get("failed_step")
        where = f" at step {step}" if step else ""
        code = self.fail(f"{what} failed{where}: {error}", ExitCode.ERROR)
        tail = str(job.get("log_tail") or "").rstrip("\n")
        if tail and not self.json_wanted():
            self.err_line("  the end of its log:")
            for line in tail.splitlines():
                self.err_line(f"    {line}")
        return code
