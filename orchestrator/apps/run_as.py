"""Who an app runs as: never root.

When the orchestrator runs as root, apps (and their builds) run as the user
named by the setting `apps.user`; otherwise as the orchestrator's own user.
An empty setting, `root`, or any user whose uid or primary group is 0 would
make an app root: refused with what to do. The launcher checks again before
it runs anything of the app (orchestrator.apps.launch, standard library only,
keeps its own copy of the rule).
"""

from __future__ import annotations

import os
import pwd
from typing import Any

from orchestrator.errors import NuaError

FIX = "set it to an unprivileged user, created if missing: nua settings set apps.user nua-app"


class RootUserRefused(NuaError):
    """`apps.user` would run apps as root."""


def app_user(setting: Any, euid: int | None = None) -> str | None:
    """The user apps run as: None for the orchestrator's own (not root), else `setting`.

    Raises RootUserRefused when the orchestrator is root and `setting` is
    empty or names a user with uid or gid 0. A user that does not exist yet
    is fine: the install creates it.
    """
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    name = str(setting or "").strip()
    if not name:
        raise RootUserRefused(
            "apps never run as root: the orchestrator runs as root and apps.user is empty "
            f"(the orchestrator's own user); {FIX}"
        )
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return name
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise RootUserRefused(
            f"apps never run as root: apps.user is {name}, whose uid is {entry.pw_uid} and "
            f"group {entry.pw_gid} (0 is root); {FIX}"
        )
    return name
