"""An app folder packed as a tar.gz, and unpacked again without trusting the archive.

`pack` is the client's half: regular files, folders and symbolic links that
stay inside the folder, in a fixed order (nua-config.toml first, then by
name), so that the same folder gives the same bytes. `unpack` is the
worker's half and treats the archive as hostile: it extracts into a
temporary sibling of the destination, member by member with every check of
`orchestrator.apps.extraction` made before anything of a member is written,
and renames the folder into place only when every member passed; on any
refusal the temporary folder is removed and nothing remains.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import NuaError

CONFIG_NAME = "nua-config.toml"
DEFAULT_MAX_BYTES = 1024**3
DEFAULT_MAX_MEMBERS = 50_000


class ArchiveError(NuaError):
    """An app folder that cannot be packed, or an archive refused; names the member."""

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.member = member


@dataclass(frozen=True)
class Unpacked:
    """What an unpack wrote: members extracted and bytes of file data."""

    members: int
    bytes: int


# -- pack --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    st: os.stat_result
    link: str | None = None


def pack(
    folder: Path, max_bytes: int = DEFAULT_MAX_BYTES, max_members: int = DEFAULT_MAX_MEMBERS
) -> bytes:
    """The folder as a tar.gz: the same folder always gives the same bytes.

    Refuses a symbolic link leaving the folder (or absolute), a special file,
    more than `max_bytes` of file data or more than `max_members` entries.
    Owners are not kept; modes are masked with 0755.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a folder")
    entries = list(_walk(root, root.resolve(), max_members))
    # The config first: the worker reads it before the job runs, and stops there.
    entries.sort(key=lambda e: e.name != CONFIG_NAME)
    total = sum(e.st.st_size for e in entries if stat.S_ISREG(e.st.st_mode))
    if total > max_bytes:
        raise ArchiveError(
            f"{root} holds {total} bytes of files, more than the limit of {max_bytes}"
        )
    buffer = io.BytesIO()
    # mtime=0 and no file name in the gzip header: only the folder decides the bytes.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry in entries:
            _add(tar, root, entry)
    return buffer.getvalue()


def _walk(root: Path, real_root: Path, max_members: int) -> Iterator[_Entry]:
    """Every entry under `root`, depth first in name order, each folder before its content."""
    count = 0

    def visit(folder: Path, base: str) -> Iterator[_Entry]:
        nonlocal count
        try:
            names = sorted(p.name for p in folder.iterdir())
        except OSError as exc:
            raise ArchiveError(f"cannot read {folder}: {exc.strerror}") from None
        for name in names:
            path = folder / name
            rel = f"{base}{name}"
            count += 1
            if count > max_members:
                raise ArchiveError(f"{root} has more than {max_members} entries")
            try:
                st = path.lstat()
            except OSError as exc:
                raise ArchiveError(f"cannot pack {path}: {exc.strerror}", rel) from None
            if stat.S_ISLNK(st.st_mode):
                yield _Entry(rel, path, st, _link_inside(root, real_root, path, rel))
            elif stat.S_ISDIR(st.st_mode):
                yield _Entry(rel, path, st)
                yield from visit(path, f"{rel}/")
            elif stat.S_ISREG(st.st_mode):
                yield _Entry(rel, path, st)
            else:
                raise ArchiveError(
                    f"cannot pack {path}: a {_kind(st.st_mode)}, not a file, folder or link",
                    rel,
                )

    yield from visit(root, "")


def _link_inside(root: Path, real_root: Path, path: Path, rel: str) -> str:
    """The link's target, if it stays inside the folder both by its text and in fact."""
    target = str(path.readlink())
    lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if (
        posixpath.isabs(target)
        or lexical == ".."
        or lexical.startswith("../")
        or not path.resolve().is_relative_to(real_root)
    ):
        raise ArchiveError(
            f"cannot pack {path}: a symbolic link to {target} leaves {root}; "
            "copy what it points to into the folder",
            rel,
        )
    return target


def _add(tar: tarfile.TarFile, root: Path, entry: _Entry) -> None:
    info = tarfile.TarInfo(entry.name)
    info.mtime = int(entry.st.st_mtime)
    info.mode = entry.st.st_mode & 0o755
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    try:
        if entry.link is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = entry.link
            tar.addfile(info)
        elif stat.S_ISDIR(entry.st.st_mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        else:
            info.size = entry.st.st_size
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with open(fd, "rb") as fh:
                now = os.fstat(fh.fileno())
                if not stat.S_ISREG(now.st_mode) or now.st_size != entry.st.st_size:
                    raise ArchiveError(f"{entry.path} changed while it was packed", entry.name)
                tar.addfile(info, fh)
    except OSError as exc:
        raise ArchiveError(f"cannot pack {entry.path}: {exc.strerror or exc}", entry.name) from None
    except UnicodeEncodeError:
        raise ArchiveError(f"cannot pack {root}: the name {entry.name!r} is not UTF-8") from None


def _kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


# -- unpack ------------------------------------------------------------------------------------


def unpack(
    source: bytes | str | os.PathLike[str],
    dest: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> Unpacked:
    """Extract a tar.gz (bytes, or a file's path) into `dest`, which must not exist.

    All or nothing: on any refusal (ArchiveError naming the member and why)
    or failure, `dest` is not created and nothing is left beside it.
    """
    dest = Path(dest)
    if os.path.lexists(dest):
        raise ArchiveError(f"cannot unpack into {dest}: it already exists")
    work = dest.parent / f".{dest.name}.unpacking-{secrets.token_hex(4)}"
    try:
        work.mkdir(mode=0o700)
    except OSError as exc:
        raise ArchiveError(f"cannot unpack into {dest}: {exc.strerror}") from None
    # Imported here: the client, which only packs, never needs it.
    from orchestrator.apps.extraction import Extraction

    try:
        result = Extraction(work, max_bytes, max_members).run(source)
        work.chmod(0o755)
        work.rename(dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return result
