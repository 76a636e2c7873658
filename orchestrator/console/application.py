"""A cleo Application that loads commands lazily and maps errors to exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from cleo.application import Application
from cleo.commands.command import Command
from cleo.exceptions import CleoError
from cleo.formatters.formatter import Formatter
from cleo.io.inputs.argv_input import ArgvInput
from cleo.io.inputs.definition import Definition
from cleo.io.inputs.option import Option
from cleo.io.io import IO
from cleo.loaders.factory_command_loader import FactoryCommandLoader

from orchestrator import __version__
from orchestrator.errors import ExitCode, NuaError
from orchestrator.host import locations as host_locations
from orchestrator.host.interrupts import Interrupted
from orchestrator.host.locations import Locations


class NuaApplication(Application):
    """Adds the global `--home` option and the documented exit codes."""

    def __init__(self, name: str, commands: dict[str, Callable[[], Command]]) -> None:
        super().__init__(name, __version__)
        self.set_command_loader(FactoryCommandLoader(commands))

    @property
    def _default_definition(self) -> Definition:
        definition = super()._default_definition
        definition.add_option(
            Option(
                "--home",
                flag=False,
                requires_value=True,
                description="Keep everything under this folder (same as NUA_HOME).",
            )
        )
        return definition

    def _get_command_name(self, io: IO) -> str | None:
        name = super()._get_command_name(io)
        if not name and io.input.has_parameter_option(["--help", "-h"], True):
            # cleo would show the help of `list` itself; a person asking wants the commands.
            io.set_input(ArgvInput(["console", "list"]))
            return "list"
        return name

    def _run(self, io: IO) -> int:
        try:
            return super()._run(io)
        except NuaError as exc:
            io.write_error_line(f"<error>error:</error> {exc}")
            return int(exc.exit_code)
        except CleoError as exc:
            self.render_error(exc, io)
            return int(ExitCode.USAGE)
        except Interrupted as exc:
            io.write_error_line(f"interrupted: {exc}")
            return exc.exit_code
        except KeyboardInterrupt:
            io.write_error_line("interrupted")
            return 128 + signal.SIGINT
        except BrokenPipeError:
            # The reader went away (`status | head`): nothing more to say, to anyone.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return int(ExitCode.ERROR)
        except OSError as exc:
            # A file or folder that could not be used: its path is in the message.
            io.write_error_line(f"<error>error:</error> {Formatter.escape(str(exc))}")
            return int(ExitCode.ERROR)


class NuaCommand(Command):
    """Base of our commands: locations from --home, and --json output."""

    def execute(self, io: IO) -> int:
        # cleo's returns 1, silently, on Ctrl-C: the application says so and exits 130.
        self._io = io
        return self.handle()

    def locations(self) -> Locations:
        return host_locations.resolve(self.option("home"))

    def write_json(self, data: Any) -> None:
        self.io.write_line(json.dumps(data, indent=2, sort_keys=True))


def run(app: Application) -> int:
    """Run `app` with a private umask: everything we create is ours alone."""
    os.umask(0o077)
    return app.run()
