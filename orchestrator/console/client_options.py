"""What every `nua` command shares without cleo: its timeout and its "not running" message.

Kept apart from client_command.py (which needs cleo) so that `nua ping`'s
quick path (quick_ping.py) reads and words them exactly as the commands do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.rpc.client import NotRunningError

# Seconds to wait for an answer when --timeout is not given: NUA_TIMEOUT, else 5.
# nua cannot read the settings in the database, so this is not a setting.
TIMEOUT_ENV = "NUA_TIMEOUT"
DEFAULT_TIMEOUT = 5.0


def timeout_seconds(option: str | None, environ: Mapping[str, str] | None = None) -> float:
    """--timeout in seconds, else NUA_TIMEOUT, else 5; ValueError saying what to fix."""
    raw = option
    wrong = f"--timeout {raw!r} is not a number of seconds"
    if raw is None:
        raw = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "")
        if not raw.strip():
            return DEFAULT_TIMEOUT
        wrong = f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; fix it or give --timeout"
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ValueError(wrong)
    return seconds


def not_running_message(exc: NotRunningError, home: str | None, changes: bool) -> str:
    """What `nua` says when the worker did not answer: what, where, and what to do."""
    from orchestrator.rpc.client import NoAnswerError

    where = f" --home {home}" if home else ""
    if isinstance(exc, NoAnswerError):
        message = (
            f"the orchestrator at {exc.endpoint} took the call but gave no answer within "
            f"{exc.timeout:g}s: it is busy or hung; see nua-orchestrator status{where}, "
            "or give a longer --timeout"
        )
    else:
        message = (
            f"the orchestrator is not running or not answering: no answer from {exc.endpoint} "
            f"within {exc.timeout:g}s; start it with: nua-orchestrator start{where}"
        )
    if changes:
        message += (
            "; if it restarted while serving this command, check whether its change was applied"
        )
    return message
