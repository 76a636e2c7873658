"""`nua ping` without cleo: what health checks and scripts run every few seconds.

Loading cleo costs more than the rest of a ping (about 40 ms of imports), so
the plain forms, `nua ping [--home DIR] [--timeout S] [--json]` (also
`--opt=value` and `-t S`), are answered here with the same output, messages
and exit codes as the `ping` command. Anything else (`--help`, verbosity, a
value that is not valid) returns None, and cleo runs the command as usual,
so that its help and usage errors read the same as every other command's.
"""

from __future__ import annotations

import json
import os
import sys
import time

from orchestrator.console.client_options import not_running_message, timeout_seconds
from orchestrator.errors import ExitCode

_VALUED = {"--home": "home", "--timeout": "timeout", "-t": "timeout"}


def _options(argv: list[str]) -> dict[str, str | bool] | None:
    """The options of `ping ...`, or None when this is not a plain ping."""
    if not argv or argv[0] != "ping":
        return None
    found: dict[str, str | bool] = {}
    rest = argv[1:]
    while rest:
        word = rest.pop(0)
        name, equals, value = word.partition("=")
        if word == "--json":
            found["json"] = True
        elif name in _VALUED and equals:
            found[_VALUED[name]] = value
        elif word in _VALUED and rest and not rest[0].startswith("-"):
            found[_VALUED[word]] = rest.pop(0)
        else:
            return None
    return found


def run(argv: list[str]) -> int | None:
    """Answer `nua ping` without cleo; None when cleo must run the command instead."""
    options = _options(argv)
    if options is None:
        return None
    try:
        timeout = timeout_seconds(options.get("timeout"))  # type: ignore[arg-type]
    except ValueError:
        return None  # cleo words the usage error
    from orchestrator.host import locations as host_locations
    from orchestrator.rpc.client import ClientError, NotRunningError, RpcClient

    home = options.get("home")
    endpoint = host_locations.resolve(home).rpc_endpoint  # type: ignore[arg-type]
    os.umask(0o077)
    try:
        with RpcClient(endpoint, timeout=timeout) as client:
            began = time.perf_counter()
            answer = client.call("system.ping")
            ms = (time.perf_counter() - began) * 1000
    except NotRunningError as exc:
        _error(not_running_message(exc, home, changes=False))  # type: ignore[arg-type]
        return int(ExitCode.NOT_RUNNING)
    except ClientError:
        return None  # rare: cleo's command says it in the usual words
    if options.get("json"):
        data = {"result": answer, "ms": round(ms, 3), "endpoint": endpoint}
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(f"{answer} from {endpoint} in {ms:.1f} ms")
    return 0


def _error(message: str) -> None:
    # As cleo writes `<error>error:</error> ...`: red on a terminal.
    label = "\033[31merror:\033[39m" if sys.stderr.isatty() else "error:"
    print(f"{label} {message}", file=sys.stderr)
