"""Where the orchestrator keeps its data, runtime files, logs and config.

One resolved set of paths for everything (DESIGN.md, Locations):

- `NUA_HOME` or `--home`: everything under one folder (tests and demos);
- root: /var/lib/nua, /run/nua, /var/log/nua, /etc/nua;
- another user: the XDG base directories.

Every directory is created 0700 and checked: not a symlink, owned by us, not
writable by group or others. Never a fixed path in /tmp.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, fields
from pathlib import Path

from orchestrator.errors import LocationError

HOME_ENV = "NUA_HOME"
# AF_UNIX socket paths are limited to 108 bytes including the final NUL.
UNIX_PATH_MAX = 107


@dataclass(frozen=True)
class Locations:
    """The resolved locations of one orchestrator instance."""

    data: Path
    runtime: Path
    logs: Path
    config: Path
    home: Path | None = None

    # Files in the runtime location.
    @property
    def lock_file(self) -> Path:
        return self.runtime / "orchestrator.lock"

    @property
    def supervisor_conf(self) -> Path:
        return self.runtime / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.runtime / "supervisor.sock"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.runtime / "supervisord.pid"

    @property
    def run_manifest(self) -> Path:
        return self.runtime / "run.json"

    @property
    def rpc_socket(self) -> Path:
        return self.runtime / "rpc.sock"

    @property
    def rpc_endpoint(self) -> str:
        return f"ipc://{self.rpc_socket}"

    # Files in the data location.
    @property
    def database(self) -> Path:
        return self.data / "nua.db"

    def directories(self) -> dict[str, Path]:
        """The four locations by name, in the order they are created."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "home"}

    def as_dict(self) -> dict[str, str]:
        """The locations as strings, for status output."""
        out = {name: str(path) for name, path in self.directories().items()}
        out["database"] = str(self.database)
        out["supervisor_conf"] = str(self.supervisor_conf)
        out["rpc_endpoint"] = self.rpc_endpoint
        return out

    def ensure(self) -> None:
        """Create every location 0700 if missing, then check each one is safe to use."""
        if self.home is not None:
            ensure_private_dir(self.home, "home", allow_existing_mode=True)
        for name, path in self.directories().items():
            ensure_private_dir(path, name)
        for sock in (self.supervisor_socket, self.rpc_socket):
            if len(os.fsencode(sock)) > UNIX_PATH_MAX:
                raise LocationError(
                    f"socket path {sock} is longer than {UNIX_PATH_MAX} bytes, "
                    "the limit of unix sockets: choose a shorter NUA_HOME"
                )


def resolve(
    home: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Locations:
    """Resolve the locations from `--home`, `NUA_HOME`, root's paths or XDG's."""
    env = os.environ if environ is None else environ
    chosen = home if home is not None else env.get(HOME_ENV) or None
    if chosen is not None:
        root = Path(chosen).expanduser()
        if not root.is_absolute():
            root = Path.cwd() / root
        return Locations(
            data=root / "data",
            runtime=root / "run",
            logs=root / "log",
            config=root / "config",
            home=root,
        )
    if os.geteuid() == 0:
        return Locations(
            data=Path("/var/lib/nua"),
            runtime=Path("/run/nua"),
            logs=Path("/var/log/nua"),
            config=Path("/etc/nua"),
        )
    user_home = Path(env.get("HOME") or Path.home())

    def xdg(var: str, fallback: str) -> Path:
        value = env.get(var, "")
        # The XDG spec says relative values are invalid and must be ignored.
        return Path(value) if value and Path(value).is_absolute() else user_home / fallback

    state = xdg("XDG_STATE_HOME", ".local/state") / "nua"
    runtime_base = env.get("XDG_RUNTIME_DIR", "")
    runtime = (
        Path(runtime_base) / "nua"
        if runtime_base and Path(runtime_base).is_absolute()
        else state / "run"
    )
    return Locations(
        data=xdg("XDG_DATA_HOME", ".local/share") / "nua",
        runtime=runtime,
        logs=state / "log",
        config=xdg("XDG_CONFIG_HOME", ".config") / "nua",
    )


def ensure_private_dir(path: Path, name: str, *, allow_existing_mode: bool = False) -> None:
    """Create `path` 0700 (parents too) if missing, then refuse it if it is unsafe.

    `allow_existing_mode` accepts an existing folder readable by others (a
    NUA_HOME the user chose), but never one writable by them.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        pass  # a symlink or a file: reported by the check below
    except PermissionError:
        raise LocationError(
            f"{name} location {path} cannot be created: permission denied; "
            "choose another --home or fix the permissions of its parent"
        ) from None
    except OSError as exc:
        raise LocationError(
            f"{name} location {path} cannot be created: {exc.strerror}; choose another --home"
        ) from None
    check_private_dir(path, name, allow_existing_mode=allow_existing_mode)


def check_private_dir(path: Path, name: str, *, allow_existing_mode: bool = False) -> None:
    """Refuse a location that is a symlink, not a folder, foreign, loose or not writable."""
    try:
        st = path.lstat()
    except OSError as exc:
        raise LocationError(f"{name} location {path} cannot be read: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise LocationError(
            f"{name} location {path} is a symlink; refusing to follow it: "
            "remove it or point --home elsewhere"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise LocationError(f"{name} location {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise LocationError(
            f"{name} location {path} is owned by uid {st.st_uid}, not by you "
            f"(uid {os.geteuid()}); refusing to use it"
        )
    loose = 0o022 if allow_existing_mode else 0o077
    if st.st_mode & loose:
        raise LocationError(
            f"{name} location {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
            f"it must not be {'writable' if allow_existing_mode else 'accessible'} "
            f"by group or others: run chmod 700 {path}"
        )
    _refuse_unwritable(path, name)


def _refuse_unwritable(path: Path, name: str) -> None:
    """Refuse a folder the effective user cannot create files in.

    Plain os.access answers for the real uid (a setuid wrapper, setpriv
    --euid); with effective_ids the kernel answers for the user the command
    acts as, read-only mounts and immutable folders included, and nothing is
    written (a probe file would change the folder's mtime).
    """
    if not os.access(path, os.W_OK | os.X_OK, effective_ids=True):
        raise LocationError(
            f"{name} location {path} is not writable by you (uid {os.geteuid()}); "
            f"fix its permissions (chmod 700 {path}) or choose another --home"
        )
