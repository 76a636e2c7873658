"""Uploads of packed apps: chunks written to a private file, checked before use.

The client sends the archive's size and sha256 first, then chunks in order
(base64 in JSON), of the size `upload_begin` answered: `apps.chunk_bytes`,
lowered so that a chunk's request always fits `rpc.max_message_bytes` (the
worker refuses a larger message before reading it). A chunk sent again (a
retry) is accepted when it is already there. Uploads live in memory and in
<data>/uploads; a restarted worker forgets them and the client starts again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from orchestrator.rpc.errors import InvalidArgument, NotFound, Unavailable

SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Room in a chunk's request for all but its data: the JSON-RPC envelope, method, upload
# id, offset and idempotency key take about 250 bytes; a client may add a longer id.
ENVELOPE_BYTES = 4096


def fitting_chunk(chunk_bytes: int, max_message_bytes: int) -> int:
    """`chunk_bytes`, lowered so that its base64 in a request fits `max_message_bytes`."""
    room = max(0, max_message_bytes - ENVELOPE_BYTES)
    # base64 makes 4 characters of every 3 bytes.
    return max(0, min(chunk_bytes, room // 4 * 3))


@dataclass
class _Upload:
    path: Path
    size: int
    sha256: str
    received: int = 0


class Uploads:
    def __init__(
        self,
        folder: Path,
        max_bytes: int,
        chunk_bytes: int,
        max_message_bytes: int | None = None,
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_message_bytes = max_message_bytes
        #: The chunk size clients are told to use, and the largest accepted.
        self.chunk_bytes = (
            chunk_bytes
            if max_message_bytes is None
            else fitting_chunk(chunk_bytes, max_message_bytes)
        )
        self._uploads: dict[str, _Upload] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Remove what a previous worker left (at start)."""
        if self.folder.is_dir():
            for entry in self.folder.iterdir():
                if entry.is_file() and not entry.is_symlink():
                    entry.unlink()

    def begin(self, size: int, sha256: str) -> str:
        if not isinstance(size, int) or size <= 0:
            raise InvalidArgument("size must be a positive number of bytes", field="size")
        if size > self.max_bytes:
            raise InvalidArgument(
                f"the app is {size} bytes packed, more than apps.max_upload_bytes "
                f"({self.max_bytes})",
                field="size",
            )
        if not isinstance(sha256, str) or not SHA256.match(sha256):
            raise InvalidArgument("sha256 must be 64 lowercase hex digits", field="sha256")
        if self.chunk_bytes < 1:
            raise Unavailable(
                f"uploads have no room: a chunk's request must fit rpc.max_message_bytes "
                f"({self.max_message_bytes}) with {ENVELOPE_BYTES} bytes to spare, and "
                "apps.chunk_bytes must be positive; raise them with nua settings set, then "
                "restart the orchestrator",
                field="chunk_bytes",
            )
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        upload_id = secrets.token_hex(16)
        path = self.folder / f"{upload_id}.tar.gz"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        with self._lock:
            self._uploads[upload_id] = _Upload(path, size, sha256)
        return upload_id

    def _get(self, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id) if isinstance(upload_id, str) else None
        if upload is None:
            raise NotFound(
                f"no upload {upload_id!r} (the orchestrator may have restarted): upload again",
                field="upload",
            )
        return upload

    def chunk(self, upload_id: str, offset: int, data: str) -> int:
        with self._lock:
            upload = self._get(upload_id)
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise InvalidArgument("data is not base64", field="data") from None
            if len(raw) > self.chunk_bytes:
                raise InvalidArgument(f"a chunk is at most {self.chunk_bytes} bytes", field="data")
            if not isinstance(offset, int) or offset < 0:
                raise InvalidArgument("offset must be a number of bytes", field="offset")
            if offset + len(raw) <= upload.received:
                return upload.received  # sent again after a lost answer
            if offset != upload.received:
                raise InvalidArgument(
                    f"chunk at offset {offset}, expected {upload.received}", field="offset"
                )
            if upload.received + len(raw) > upload.size:
                raise InvalidArgument("more data than the size announced", field="data")
            fd = os.open(upload.path, os.O_WRONLY | os.O_NOFOLLOW)
            try:
                os.pwrite(fd, raw, offset)
            finally:
                os.close(fd)
            upload.received += len(raw)
            return upload.received

    def finish(self, upload_id: str) -> Path:
        """The complete, checked archive; the upload is forgotten (the caller owns the file)."""
        with self._lock:
            upload = self._get(upload_id)
            if upload.received != upload.size:
                raise InvalidArgument(
                    f"upload incomplete: {upload.received} of {upload.size} bytes", field="upload"
                )
            digest = hashlib.sha256()
            with open(upload.path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            del self._uploads[upload_id]
        if digest.hexdigest() != upload.sha256:
            upload.path.unlink(missing_ok=True)
            raise InvalidArgument("upload corrupted: its sha256 does not match", field="upload")
        return upload.path
