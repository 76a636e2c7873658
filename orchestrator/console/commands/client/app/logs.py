"""nua app logs LABEL [-f] [--stderr] [--lines N]"""

from __future__ import annotations

import json
from typing import Any

from cleo.helpers import argument, option

from orchestrator.console.client_command import UsageError
from orchestrator.console.commands.client.app_command import AppCommand

FOLLOW_POLL_SECONDS = 0.5
# More new text than this in one answer: the log is busy, ask again at once.
BUSY_BYTES = 64 * 1024
MAX_LINES = 10000


class AppLogsCommand(AppCommand):
    name = "app logs"
    description = "Print the end of an app's output, or follow it."
    arguments = [argument("label", "The app's label (see `nua apps`).")]
    options = [
        option("follow", "f", "Keep printing what the app writes, until Ctrl-C."),
        option("stderr", None, "Its standard error instead of its standard output."),
        option("lines", None, "How many lines from the end (default: 100).", flag=False),
    ]
    help = (
        "With --json: the answer as a JSON object (text, offset); with -f, one such\n"
        "object per line for each new piece of the log."
    )

    def handle(self) -> int:
        label = self.argument("label")
        stderr = bool(self.option("stderr"))
        answer = self.rpc("app.logs", {"label": label, "stderr": stderr, "lines": self._lines()})
        self._print(answer)
        if not self.option("follow"):
            return 0
        try:
            while True:
                if len(answer.get("text", "").encode("utf-8")) < BUSY_BYTES:
                    self.pause(FOLLOW_POLL_SECONDS)
                answer = self.rpc(
                    "app.logs", {"label": label, "stderr": stderr, "offset": answer["offset"]}
                )
                self._print(answer)
        except KeyboardInterrupt:
            return 0

    def _lines(self) -> int:
        raw = self.option("lines")
        if raw is None:
            return 100
        try:
            lines = int(raw)
        except ValueError:
            lines = 0
        if not 0 < lines <= MAX_LINES:
            raise UsageError(f"--lines {raw!r} is not a number of lines (1..{MAX_LINES})", "lines")
        return lines

    def _print(self, answer: dict[str, Any]) -> None:
        if self.json_wanted():
            if self.option("follow"):
                self.out(json.dumps(answer, sort_keys=True))
            else:
                self.write_json(answer)
        elif answer.get("text"):
            self.out_partial(answer["text"])
