"""Run one app: `python -I -m orchestrator.apps.launch SPEC.json` (supervisord's command).

The spec (0600, written by the worker) gives the command, the folder, the
environment and the user. The app gets exactly that environment, plus HOME
and NUA_RUN_TOKEN, never the rest of the orchestrator's (supervisord passes
its own to every program). As root, it
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
    # How `start` finds the processes of a supervisord that died (host/processes.py):
    # the one variable of ours an app gets (a random id of the run, not a secret).
    token = os.environ.get("NUA_RUN_TOKEN")
    if token:
        env["NUA_RUN_TOKEN"] = token
    # The folder first: a release is reached through folders its user may not traverse.
    os.chdir(spec["cwd"])
    user = spec.get("user")
    if os.geteuid() == 0:
        # Apps never run as root: the worker refuses such a setting, and this is the
        # last check before anything of the app runs (a spec written otherwise).
        entry = _unprivileged(user)
        if entry is None:
            print(
                f"nua: refusing to run this app as root: the launch spec's user {user!r} is "
                "empty, missing, or has uid or gid 0; set apps.user to an unprivileged user "
                "(nua settings set apps.user nua-app), then restart the orchestrator",
                file=sys.stderr,
            )
            return 78  # EX_CONFIG
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    # The data folder, else the home of the user it runs as (ours when not root).
    env.setdefault("HOME", spec.get("home") or pwd.getpwuid(os.getuid()).pw_dir)
    os.umask(0o027)
    sys.stdout.flush()
    # The command is the operator's, run by a shell so that $NUA_PORT expands.
    os.execve("/bin/sh", ["/bin/sh", "-c", "exec " + spec["command"]], env)  # noqa: S606
    return 127  # not reached


def _unprivileged(user: object) -> pwd.struct_passwd | None:
    """The user's entry if it is one apps may run as (not uid or gid 0), else None."""
    if not isinstance(user, str) or not user:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return None if entry.pw_uid == 0 or entry.pw_gid == 0 else entry


if __name__ == "__main__":
    sys.exit(main(sys.argv))
