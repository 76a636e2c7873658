"""Extracting a hostile tar.gz, member by member, every check made before anything is written.

Our own checks, whose messages an operator reads: a member's path (absolute,
`..`, control characters, a duplicate, inside a symbolic link or a file), its
type (files, folders, symbolic and hard links only), the number of members,
the sizes declared in the headers (checked before writing, so a 10 GB sparse
member is refused without a byte written) and the bytes actually written,
links (absolute, leaving the release by their text, hard links only to an
earlier file), the size of every read of the decompressed stream (so that a
forged pax or long-name header cannot make tarfile load gigabytes), and,
once the symbolic links exist, where each one really resolves: a chain like
`d -> .`, `l -> d/../x` is inside by its text but outside in fact.

tarfile's `data` filter then gives a second opinion on every member (paths
and link targets resolved against the destination, special files, modes):
it cannot see such chains, as the links do not exist yet when it runs, and
its file mode (0755 at most, owner read-write, no setuid, setgid or sticky
bit, executable only if the owner could execute) is the one used. Symbolic
links are created last, so that no file is ever written through one.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from orchestrator.apps.archive import ArchiveError, Unpacked

CHUNK = 64 * 1024
# No header of a sane archive is this large; a pax or GNU long-name header
# claiming more is refused before tarfile reads it into memory.
MAX_READ = 1024 * 1024
# Decompressed bytes allowed per member beyond its data (headers, padding).
HEADER_ALLOWANCE = 4 * 1024
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DIR_MODE = 0o700
FILE_MODE = 0o600


class _Bounded:
    """The decompressed stream as tarfile reads it, with every read and the total bounded."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw = raw
        self.limit = limit

    def _check(self, end: int) -> None:
        if end > self.limit:
            raise ArchiveError(f"the archive expands to more than {self.limit} bytes")

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_READ:
            raise ArchiveError(f"the archive has a header or block larger than {MAX_READ} bytes")
        self._check(self.raw.tell() + size)
        return self.raw.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._check(offset)
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


@contextlib.contextmanager
def _opened(source: bytes | str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    if isinstance(source, bytes | bytearray):
        yield io.BytesIO(source)
        return
    try:
        fh = open(source, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise ArchiveError(f"cannot read {source}: {exc.strerror}") from None
    with fh:
        yield fh


_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class Extraction:
    """One pass over the archive's members into `root` (a fresh, private folder)."""

    def __init__(self, root: Path, max_bytes: int, max_members: int) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.count = 0
        self.declared = 0
        self.written = 0
        self.seen: set[str] = set()
        self.files: set[str] = set()
        self.symlinks: dict[str, str] = {}
        #: Set by a subclass to end the pass early.
        self.done = False

    def run(self, source: bytes | str | os.PathLike[str]) -> Unpacked:
        self._pass(source)
        self._make_symlinks()
        return Unpacked(self.count, self.written)

    def _pass(self, source: bytes | str | os.PathLike[str]) -> None:
        """Every member in order, each checked then extracted, until the end or `done`."""
        limit = self.max_bytes + (self.max_members + 1) * HEADER_ALLOWANCE + MAX_READ
        with _opened(source) as fh:
            gz = gzip.GzipFile(fileobj=fh, mode="rb")
            try:
                # Closed by the `with tar` below.
                tar = tarfile.open(fileobj=_Bounded(gz, limit), mode="r:")  # noqa: SIM115
            except _READ_ERRORS as exc:
                raise ArchiveError(f"not a tar.gz archive: {exc}") from None
            with tar:
                while not self.done and (member := self._next(tar)) is not None:
                    self._extract(tar, member)

    def _next(self, tar: tarfile.TarFile) -> tarfile.TarInfo | None:
        try:
            member = tar.next()
        except _READ_ERRORS as exc:
            raise ArchiveError(
                f"the archive is damaged after {self.count} members: {exc}"
            ) from None
        if member is None:
            return None
        self.count += 1
        if self.count > self.max_members:
            raise ArchiveError(
                f"archive member {member.name!r}: more than {self.max_members} members",
                member.name,
            )
        # Members are kept by tarfile for random access, which this single pass never needs.
        tar.members.clear()
        return member

    def _refuse(self, member: tarfile.TarInfo, reason: str) -> ArchiveError:
        return ArchiveError(f"archive member {member.name!r}: {reason}", member.name)

    def _extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = self._name(member)
        if name is None:
            return
        # Our link checks first: their messages say more than the data filter's.
        linked = ""
        if member.issym():
            self._check_symlink(member, name)
        elif member.islnk():
            linked = self._hard_link_target(member)
        mode = self._filtered_mode(member)
        path = self.root / name
        try:
            if member.isdir():
                self._make_dir(member, path, (member.mode & 0o755) | DIR_MODE)
            elif member.issym():
                pass  # created last, by _make_symlinks
            elif member.islnk():
                self._hard_link(member, name, path, linked)
            else:
                self._write_file(tar, member, name, path, mode)
        except OSError as exc:
            raise self._refuse(member, f"cannot be written: {exc.strerror or exc}") from None

    def _name(self, member: tarfile.TarInfo) -> str | None:
        """The member's checked, normalized name; None for the archive's top folder."""
        raw = member.name
        if CONTROL.search(raw):
            raise self._refuse(member, "a control character in its name")
        if raw.startswith("/"):
            raise self._refuse(member, "an absolute path")
        if ".." in raw.split("/"):
            raise self._refuse(member, "a '..' component in its path")
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if not parts:
            if not member.isdir():
                raise self._refuse(member, "the top of the archive must be a folder")
            return None
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            if member.ischr() or member.isblk():
                kind = "a device node"
            elif member.isfifo():
                kind = "a fifo"
            else:
                kind = f"an unsupported member type ({member.type!r})"
            raise self._refuse(member, f"{kind}: only files, folders and links are allowed")
        name = "/".join(parts)
        if name in self.seen:
            raise self._refuse(member, "a duplicate: the archive has this name twice")
        self.seen.add(name)
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            if ancestor in self.symlinks:
                raise self._refuse(member, f"inside {ancestor}, a symbolic link")
            if ancestor in self.files:
                raise self._refuse(member, f"inside {ancestor}, a file")
        if member.isreg():
            if self.declared + member.size > self.max_bytes:
                raise self._refuse(
                    member,
                    f"declares {member.size} bytes, which would make the release larger "
                    f"than its limit of {self.max_bytes} bytes",
                )
            self.declared += member.size
        return name

    def _filtered_mode(self, member: tarfile.TarInfo) -> int:
        """The second opinion of tarfile's `data` filter; the file mode it allows."""
        data_filter = getattr(tarfile, "data_filter", None)  # Python >= 3.11.4
        if data_filter is None:
            return (member.mode & 0o755) | FILE_MODE
        try:
            filtered = data_filter(member, str(self.root))
        except tarfile.FilterError as exc:
            raise self._refuse(member, f"refused by tarfile's data filter: {exc}") from None
        return filtered.mode if filtered.mode is not None else FILE_MODE

    def _ensure_parent(self, path: Path) -> None:
        # No symbolic link exists yet in the tree, so these are real folders of ours.
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    def _make_dir(self, member: tarfile.TarInfo, path: Path, mode: int) -> None:
        self._ensure_parent(path)
        if path.is_dir() and not path.is_symlink():
            pass  # made earlier as the parent of a file
        elif os.path.lexists(path):
            raise self._refuse(member, "a folder where an earlier member is a file")
        else:
            path.mkdir(mode=DIR_MODE)
        path.chmod(mode & 0o777)

    def _check_symlink(self, member: tarfile.TarInfo, name: str) -> None:
        target = member.linkname
        if not target:
            raise self._refuse(member, "a symbolic link to nothing")
        if target.startswith("/"):
            raise self._refuse(member, f"a symbolic link to an absolute path ({target})")
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if lexical == ".." or lexical.startswith("../"):
            raise self._refuse(member, f"a symbolic link leaving the release (to {target})")
        self.symlinks[name] = target

    def _hard_link_target(self, member: tarfile.TarInfo) -> str:
        """The earlier file a hard link names, normalized."""
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/"):
            raise self._refuse(member, f"a hard link leaving the release (to {target})")
        normalized = "/".join(p for p in target.split("/") if p not in ("", "."))
        if normalized not in self.files:
            raise self._refuse(
                member, f"a hard link to {target}, which is not an earlier file of the archive"
            )
        return normalized

    def _hard_link(self, member: tarfile.TarInfo, name: str, path: Path, target: str) -> None:
        self._ensure_parent(path)
        if os.path.lexists(path):
            raise self._refuse(member, "a file where an earlier member is a folder")
        os.link(self.root / target, path, follow_symlinks=False)
        self.files.add(name)

    def _write_file(
        self,
        tar: tarfile.TarFile,
        member: tarfile.TarInfo,
        name: str,
        path: Path,
        mode: int,
    ) -> None:
        self._ensure_parent(path)
        if os.path.lexists(path):
            raise self._refuse(member, "a file where an earlier member is a folder")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, FILE_MODE)
        self.files.add(name)
        with open(fd, "wb") as out:
            source = tar.extractfile(member)
            while source is not None:
                try:
                    block = source.read(CHUNK)
                except _READ_ERRORS as exc:
                    raise self._refuse(member, f"damaged or truncated data: {exc}") from None
                if not block:
                    break
                self.written += len(block)
                if self.written > self.max_bytes:
                    raise self._refuse(
                        member, f"more than the release's limit of {self.max_bytes} bytes"
                    )
                out.write(block)
            os.fchmod(out.fileno(), mode & 0o777 & ~0o7000)

    def _make_symlinks(self) -> None:
        """Create the links last, then check where each really leads (chains included)."""
        for name, target in self.symlinks.items():
            path = self.root / name
            self._ensure_parent(path)
            if os.path.lexists(path):
                raise ArchiveError(
                    f"archive member {name!r}: a symbolic link where an earlier member "
                    "is a file or folder",
                    name,
                )
            path.symlink_to(target)
        for name, target in self.symlinks.items():
            real = os.path.realpath(self.root / name)
            if os.path.commonpath([real, self.real_root]) != self.real_root:
                raise ArchiveError(
                    f"archive member {name!r}: a symbolic link to {target} that leaves "
                    "the release through other links",
                    name,
                )


class Finder(Extraction):
    """Unpack's pass and checks, writing nothing, up to one small file: read it and stop.

    For the worker to read an upload's config before any job runs: every
    member up to that file passes the checks of an unpack (name, type, links,
    count, declared sizes, bounded headers and reads), so a forged header or a
    10 GB member costs no more memory or time than it would at unpack.
    """

    def __init__(self, wanted: str, max_size: int, max_bytes: int, max_members: int) -> None:
        # The data filter resolves names against a root: one that never exists.
        super().__init__(Path("/nonexistent/nua-finder"), max_bytes, max_members)
        self.wanted = wanted
        self.max_size = max_size
        self.found: bytes | None = None

    def find(self, source: bytes | str | os.PathLike[str]) -> bytes | None:
        """The wanted file's bytes, or None when the archive ends without it."""
        self._pass(source)
        return self.found

    def _extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = self._name(member)
        if name is None:
            return
        if member.issym():
            self._check_symlink(member, name)
        elif member.islnk():
            self._hard_link_target(member)
            self.files.add(name)
        elif member.isreg():
            self.files.add(name)
        self._filtered_mode(member)
        if name != self.wanted:
            return
        if not member.isreg():
            raise self._refuse(member, "must be a file")
        if member.size > self.max_size:
            raise self._refuse(member, f"is larger than {self.max_size} bytes")
        source = tar.extractfile(member)
        try:
            self.found = source.read(self.max_size + 1) if source is not None else b""
        except _READ_ERRORS as exc:
            raise self._refuse(member, f"damaged or truncated data: {exc}") from None
        self.done = True
