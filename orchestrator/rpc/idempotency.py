"""Idempotency keys: the key a changing call carries, its params' fingerprint, stored answers.

A changing call's answer is stored under its key, in the transaction of its
change; a retry with the same key gets that answer and changes nothing more.
Answers count for `Answers.hours`, then are forgotten (pruned).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.db.models import IdempotencyRecord, utcnow
from orchestrator.db.prepared import Prepared
from orchestrator.rpc.errors import Conflict

log = logging.getLogger("nua.rpc.idempotency")

# (key, method, fingerprint of its params) of the changing call being served by this
# thread, if it carries a key; (key, method) alone skips the params check.
Idempotency = tuple[str, str] | tuple[str, str, str | None]
IDEMPOTENCY: contextvars.ContextVar[Idempotency | None] = contextvars.ContextVar(
    "idempotency", default=None
)
# Parameters left out of a fingerprint: a fast hash of a password, stored next to
# the answer, could be brute-forced from a copy of the database.
SECRET_PARAMS = frozenset({"password", "secret", "token"})
# Built once (json.dumps with options builds an encoder per call). ensure_ascii
# (the default): a lone surrogate, valid in JSON text, would not encode as UTF-8.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def fingerprint(method: str, params: dict[str, Any]) -> str:
    """sha256 of the method and its params as canonical JSON (sorted keys, secrets left out)."""
    kept = {name: value for name, value in params.items() if name not in SECRET_PARAMS}
    return hashlib.sha256(_CANONICAL([method, kept]).encode("ascii")).hexdigest()


# What stored_answer returns when no answer counts for the key.
MISSING = object()

_ANSWER = select(
    IdempotencyRecord.method,
    IdempotencyRecord.fingerprint,
    IdempotencyRecord.result,
    (IdempotencyRecord.created_at < bindparam("cutoff")).label("expired"),
).where(IdempotencyRecord.key == bindparam("key"))
_FORGET_ONE = delete(IdempotencyRecord).where(IdempotencyRecord.key == bindparam("key"))
RECORD_ANSWER = Prepared(
    insert(IdempotencyRecord), ("key", "method", "fingerprint", "result", "created_at")
)


def stored_answer(
    session: Session, key: str, method: str, cutoff: datetime, params_hash: str | None = None
) -> Any:
    """The answer stored for `key` since `cutoff`, MISSING if none.

    Conflict if the key was used for another method, or with other params
    (`params_hash` is their fingerprint; an answer stored without one is not
    compared). An answer from before `cutoff` (older than the window) is
    forgotten here, so that the key can be used again: pruning runs only now
    and then.
    """
    row = session.execute(_ANSWER, {"key": key, "cutoff": cutoff}).first()
    if row is None:
        return MISSING
    if row.expired:
        session.execute(_FORGET_ONE, {"key": key})
        return MISSING
    if row.method != method:
        raise Conflict(f"idempotency key already used for {row.method}", field="idempotency_key")
    if params_hash is not None and row.fingerprint not in (None, params_hash):
        raise Conflict(
            f"idempotency key already used for {method} with other parameters; "
            "a new request needs a new key",
            field="idempotency_key",
        )
    return row.result


def answer_row(idempotency: Idempotency, result: Any, created_at: datetime) -> dict[str, Any]:
    """RECORD_ANSWER's params: `result`, stored under the call's key, method and fingerprint."""
    key, method, *params = idempotency
    return {
        "key": key,
        "method": method,
        "fingerprint": params[0] if params else None,
        "result": result,
        "created_at": created_at,
    }


def is_key_taken(exc: BaseException) -> bool:
    """Whether `exc` says the idempotency key is stored already."""
    return isinstance(exc, IntegrityError) and "idempotency_keys" in str(exc.orig)


@dataclass
class Answers:
    """How long idempotency answers count, and pruning the old ones while the worker runs.

    The writer prunes at most once every `prune_every` seconds, in a
    transaction of its own after a group commit: the table only grows through
    writes, so an idle worker has nothing to prune. `clock` (wall time, for
    created_at) and `monotonic` (for the interval) are injectable for tests.
    """

    hours: float = 24.0
    prune_every: float = 600.0
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    last_prune: float | None = None
    pruned: int = 0

    def cutoff(self) -> datetime:
        """Answers created before this are too old to return."""
        return self.clock() - timedelta(hours=self.hours)

    def prune(self, engine: Engine) -> int:
        """Delete the answers older than the window now; how many went."""
        self.last_prune = self.monotonic()
        with Session(engine) as session, session.begin():
            gone = session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.created_at < self.cutoff())
            ).rowcount
        self.pruned += gone
        if gone:
            log.info("forgot %d idempotency answer(s) older than %gh", gone, self.hours)
        return gone

    def prune_if_due(self, engine: Engine) -> None:
        """Prune when `prune_every` seconds passed since the last time; never raises."""
        if self.last_prune is not None and self.monotonic() - self.last_prune < self.prune_every:
            return
        try:
            self.prune(engine)
        except Exception as exc:
            # Pruning is housekeeping: a busy or full database must not stop the writer.
            log.warning("pruning old idempotency answers failed (retried later): %s", exc)
