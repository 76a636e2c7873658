"""Password hashing with Argon2id; a password or its hash is never logged.

Hashing is slow on purpose (tens of milliseconds and 64 MiB by default): call
`hash` before handing a change to the writer, never inside its job, so that
one password does not hold up every other write. At most one hash per core
runs at a time: more would not finish sooner, and each holds its 64 MiB.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

log = logging.getLogger(__name__)

# OWASP Password Storage Cheat Sheet, Argon2id minimum: 19 MiB, 2 iterations, 1 lane.
OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2
OWASP_MIN_PARALLELISM = 1


def production_hasher() -> PasswordHasher:
    """RFC 9106's low-memory profile: Argon2id, 64 MiB, 3 iterations, 4 lanes."""
    return PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def meets_owasp_minimum(hasher: PasswordHasher) -> bool:
    """True when `hasher` is Argon2id with at least OWASP's minimum cost."""
    return (
        hasher.type is Type.ID
        and hasher.memory_cost >= OWASP_MIN_MEMORY_KIB
        and hasher.time_cost >= OWASP_MIN_TIME_COST
        and hasher.parallelism >= OWASP_MIN_PARALLELISM
    )


class Passwords:
    """Hashes passwords and checks them against stored hashes.

    The hasher is injectable so that tests can use cheap parameters; a hash
    records its own parameters, so hashes made with other ones still verify.
    """

    def __init__(self, hasher: PasswordHasher | None = None, max_parallel: int = 0) -> None:
        self.hasher = hasher if hasher is not None else production_hasher()
        self._dummy_hash: str | None = None
        # Hashes and checks computed at once (0: one per core); callers beyond wait.
        self.max_parallel = max_parallel or os.cpu_count() or 2
        self._slots = threading.BoundedSemaphore(self.max_parallel)

    def hash(self, password: str) -> str:
        """The Argon2id hash of `password`, in PHC string format, with a fresh salt."""
        with self._slots:
            return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches `password_hash`; False on mismatch or no hash.

        Without a hash, a dummy one is checked anyway, so that "no password
        set" takes as long to answer as "wrong password".
        """
        if password_hash is None:
            self._verify(self._dummy(), password)
            return False
        return self._verify(password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            with self._slots:
                return self.hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            # Not a mismatch: the stored hash cannot be decoded (corrupt, or not Argon2).
            log.warning("a stored password hash is not a valid Argon2 hash; check refused")
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            # Two threads may both compute it: harmless, either result will do.
            self._dummy_hash = self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
