"""The malicious archive sample: hostile uploads built member by member.

`nua install` never makes these (its pack refuses links leaving the folder,
special files, ...): they are what a hostile client could upload through the
API. Each has a valid nua-config.toml (app `evil`), placed before the hostile
member or after it: after it, the worker meets the hostile member while
reading the config (before any job); before it, at the install's unpack step.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

CONFIG = b"""[metadata]
id = "evil"
version = "1.0.0"

[run]
command = "sleep 600"
"""
TEN_GB = 10 * 1024**3
# What made a 306 KB upload take 327 MB of the worker's memory.
HUGE_HEADER_BYTES = 300 * 1024 * 1024


class _Zeros(io.RawIOBase):
    """`size` zero bytes, made as they are read (a huge member costs no memory to write)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


Member = Callable[[tarfile.TarFile], None]


def _config(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("nua-config.toml")
    info.size = len(CONFIG)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(CONFIG))


def absolute_path(tar: tarfile.TarFile) -> None:
    """A file at /etc/nua-evil: written outside the release by a naive unpack."""
    info = tarfile.TarInfo("/etc/nua-evil")
    info.size = 4
    tar.addfile(info, io.BytesIO(b"evil"))


def dot_dot(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("../escape.txt")
    info.size = 1
    tar.addfile(info, io.BytesIO(b"x"))


def symlink_to_etc(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("passwd")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    tar.addfile(info)


def huge_pax_header(tar: tarfile.TarFile, size: int = HUGE_HEADER_BYTES) -> None:
    """A pax extended header of `size` real bytes (zeros, so the upload stays small):
    a plain tarfile reads a header whole into memory."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = size
    tar.addfile(info, io.BufferedReader(_Zeros(size), 1 << 20))


def sparse_10gb(tar: tarfile.TarFile) -> None:
    """A member as `tar --sparse --format=pax` writes a 10 GB sparse file: a tiny map."""
    info = tarfile.TarInfo("GNUSparseFile.0/big")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "big",
        "GNU.sparse.realsize": str(TEN_GB),
    }
    sparse_map = f"1\n{TEN_GB}\n0\n".encode().ljust(512, b"\0")
    info.size = len(sparse_map)
    tar.addfile(info, io.BytesIO(sparse_map))


def archive(hostile: Member, config_first: bool = False) -> bytes:
    """A tar.gz of the app `evil` with the hostile member after (or before) its config."""
    buffer = io.BytesIO()
    # Pax, so that a pax member is written as given; ustar headers otherwise.
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        if config_first:
            _config(tar)
        hostile(tar)
        if not config_first:
            _config(tar)
    return buffer.getvalue()
