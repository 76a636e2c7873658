"""Run one app: `python -I -m orchestrator.apps.launch SPEC.json` (supervisord's command).

The spec (0600, written by the worker) gives the command, the folder, the
environment and the user. The app gets exactly that environment, never the
orchestrator's (supervisord passes its own to every program). As root, it
drops to the app's user before running anything of the app. Standard
library only: this runs once per app start.
"""

from __future__ import annotations

import json
import os
import pwd
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m orchestrator.apps.launch SPEC.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    env = {str(k): str(v) for k, v in spec["env"].items()}
    # How `start` finds the processes of a supervisord that died (host/processes.py).
    token = os.environ.get("NUA_RUN_TOKEN")
    if token:
        env["NUA_RUN_TOKEN"] = token
    # The folder first: a release is reached through folders its user may not traverse.
    os.chdir(spec["cwd"])
    user = spec.get("user")
    if user and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        env.setdefault("HOME", spec.get("home") or entry.pw_dir)
    os.umask(0o027)
    sys.stdout.flush()
    # The command is the operator's, run by a shell so that $NUA_PORT expands.
    os.execve("/bin/sh", ["/bin/sh", "-c", "exec " + spec["command"]], env)  # noqa: S606
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
