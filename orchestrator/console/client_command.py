"""The base of `nua` commands: a client for the worker, errors as exit codes, output.

A command calls `self.rpc(method, params)` in `handle()` and prints the
result through `write_json`, `write_table` or `out`. Failures become one
line on stderr, `error: <message> (<field>)`, and an exit code (README):

    0 ok, 1 error, 2 usage (also invalid_argument and invalid params),
    3 the orchestrator is not running, 4 not found (also no such method),
    5 already exists / conflict.

Nothing heavy is imported at module level: `nua --help` loads every command.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from cleo.formatters.formatter import Formatter
from cleo.helpers import option
from cleo.io.outputs.output import Type as OutputType
from cleo.ui.question import Question

from orchestrator.console.application import NuaCommand
from orchestrator.console.client_options import (
    DEFAULT_TIMEOUT,
    TIMEOUT_ENV,
    not_running_message,
    timeout_seconds,
)
from orchestrator.errors import ExitCode

if TYPE_CHECKING:
    from cleo.io.inputs.option import Option
    from cleo.io.io import IO

    from orchestrator.rpc.client import NotRunningError, RemoteError, RpcClient

# Stable error names (data.name) and the exit codes they map to.
EXIT_BY_NAME: dict[str, ExitCode] = {
    "invalid_argument": ExitCode.USAGE,
    "not_found": ExitCode.NOT_FOUND,
    "already_exists": ExitCode.CONFLICT,
    "conflict": ExitCode.CONFLICT,
}
# JSON-RPC's own errors: params that do not fit the method are a usage error.
METHOD_NOT_FOUND, INVALID_PARAMS = -32601, -32602
EXIT_BY_CODE: dict[int, ExitCode] = {
    METHOD_NOT_FOUND: ExitCode.NOT_FOUND,
    INVALID_PARAMS: ExitCode.USAGE,
}


class CommandError(Exception):
    """A failure found by the command itself: one line, an exit code, maybe a field."""

    def __init__(
        self, message: str, exit_code: ExitCode = ExitCode.ERROR, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.field = field


class UsageError(CommandError):
    """A bad argument or option value (exit 2)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, ExitCode.USAGE, field)


class SecretQuestion(Question):
    """A question answered without echo, and only without echo.

    cleo's own reads an empty hidden answer again from the input with echo on,
    where a password typed next would show on the screen.
    """

    def __init__(self, question: str) -> None:
        super().__init__(question)
        self.hide()

    def _do_ask(self, io: IO) -> Any:
        self._write_prompt(io)
        return self._get_hidden_response(io)


def exit_code_of(error: RemoteError) -> ExitCode:
    """The exit code for an error the worker answered with."""
    if error.name in EXIT_BY_NAME:
        return EXIT_BY_NAME[error.name]
    return EXIT_BY_CODE.get(error.code, ExitCode.ERROR)


def remote_message(error: RemoteError) -> str:
    """The worker's message, with its reason or error id when it gave one."""
    data = error.data if isinstance(error.data, dict) else {}
    message = error.message
    if data.get("reason"):
        message = f"{message}: {data['reason']}"
    if data.get("error_id"):
        message = f"{message} (error id {data['error_id']}; details are in the rpc log)"
    return message


class ClientCommand(NuaCommand):
    """A `nua` command: talks to the worker of the --home given, with a deadline."""

    # Whether the command changes state (a lost answer then leaves its outcome unknown).
    changes: ClassVar[bool] = False
    # Options every client command has; subclasses add theirs with `options = [...]`.
    common_options: ClassVar[list[Option]] = [
        option(
            "timeout",
            "t",
            f"Seconds to wait for the orchestrator to answer [default: {TIMEOUT_ENV}, else "
            f"{DEFAULT_TIMEOUT:g}]",
            flag=False,
        ),
        option("json", None, "Print the result as JSON."),
    ]

    def configure(self) -> None:
        super().configure()
        for opt in self.common_options:
            if not self._definition.has_option(opt.name):
                self._definition.add_option(opt)

    def execute(self, io: IO) -> int:
        self._io = io
        try:
            return self.handle()
        except CommandError as exc:
            return self.fail(exc.message, exc.exit_code, exc.field)
        except Exception as exc:
            from orchestrator.rpc.client import ClientError, NotRunningError, RemoteError

            if isinstance(exc, NotRunningError):
                return self.fail(self._not_running(exc), ExitCode.NOT_RUNNING)
            if isinstance(exc, RemoteError):
                return self.fail(remote_message(exc), exit_code_of(exc), exc.field)
            if isinstance(exc, ClientError):
                return self.fail(str(exc), ExitCode.ERROR)
            raise

    # -- talking to the worker ----------------------------------------------------

    def timeout(self) -> float:
        """--timeout in seconds, else NUA_TIMEOUT, else 5; a usage error if not a number."""
        try:
            return timeout_seconds(self.option("timeout"))
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def endpoint(self) -> str:
        return self.locations().rpc_endpoint

    def client(self) -> RpcClient:
        from orchestrator.rpc.client import RpcClient

        return RpcClient(self.endpoint(), timeout=self.timeout())

    def rpc(self, method: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """Call `method` on the worker and return its result (errors become exit codes)."""
        from orchestrator.rpc.client import RemoteError

        with self.client() as client:
            try:
                return client.call(method, params)
            except RemoteError as exc:
                if exc.code == METHOD_NOT_FOUND:
                    raise CommandError(
                        f"the orchestrator has no method {method!r}; `nua methods` lists them",
                        ExitCode.NOT_FOUND,
                    ) from None
                raise

    def _not_running(self, exc: NotRunningError) -> str:
        return not_running_message(exc, self.option("home"), self.changes)

    # -- output -----------------------------------------------------------------------

    def json_wanted(self) -> bool:
        return bool(self.option("json"))

    def out(self, text: str = "") -> None:
        """Print a line as it is (data may hold `<`, which cleo would take for a tag)."""
        self.io.write_line(text, type=OutputType.RAW)

    def write_json(self, data: Any) -> None:
        self.out(json.dumps(data, indent=2, sort_keys=True))

    def write_table(
        self, rows: Sequence[Sequence[str]], headers: Sequence[str] | None = None, indent: str = ""
    ) -> None:
        """An aligned table, columns two spaces apart, under a header line if given."""
        lines = [headers, *rows] if headers is not None else list(rows)
        if not lines:
            return
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        for line in lines:
            cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
            self.out((indent + "  ".join(cells)).rstrip())

    def write_fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """`name  value` lines, the values aligned."""
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            self.out(f"{name.ljust(width)}  {value}".rstrip())

    def fail(self, message: str, exit_code: ExitCode, field: str | None = None) -> int:
        """Print `error: <message> (<field>)` on stderr and return the exit code."""
        where = f" ({field})" if field else ""
        self.io.write_error_line(f"<error>error:</error> {Formatter.escape(message + where)}")
        return int(exit_code)

    # -- secrets ------------------------------------------------------------------------

    def read_password(self, from_stdin: bool) -> str:
        """A password: one line of stdin, or asked twice without echo; never from argv."""
        if from_stdin:
            stream = self.io.input.stream
            line = stream.readline() if stream is not None else ""
            password = line.removesuffix("\n").removesuffix("\r")
            if not password:
                raise UsageError("--password-stdin: stdin gave no password", field="password")
            return password
        if not self.io.is_interactive():
            raise UsageError(
                "no terminal to ask for the password; pipe it with --password-stdin",
                field="password",
            )
        try:
            first = SecretQuestion("Password:").ask(self.io)
            second = SecretQuestion("Password (again):").ask(self.io)
        except EOFError:
            raise CommandError("no password given; nothing was changed", field="password") from None
        if not first:
            raise CommandError("the password is empty; nothing was changed", field="password")
        if first != second:
            raise CommandError("the passwords do not match; nothing was changed", field="password")
        return str(first)
