"""orchestrator/security/passwords.py: Argon2id at OWASP's cost or more, never logged."""

from __future__ import annotations

import logging
import os
import threading

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from orchestrator.security.passwords import (
    OWASP_MIN_MEMORY_KIB,
    OWASP_MIN_PARALLELISM,
    OWASP_MIN_TIME_COST,
    Passwords,
    meets_owasp_minimum,
    production_hasher,
)
from tests.support.polling import wait_for

SECRET = "correct horse battery staple"  # noqa: S105 (a test password)


@pytest.fixture
def fast() -> Passwords:
    """Cheap parameters: only tests may use them."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(scope="module")
def production_hash() -> str:
    """One hash at production cost (about 50 ms), shared by the tests that need it."""
    return Passwords().hash(SECRET)


def test_owasp_minimum_is_owasps() -> None:
    # Password Storage Cheat Sheet: m=19 MiB, t=2, p=1 for Argon2id.
    assert (OWASP_MIN_MEMORY_KIB, OWASP_MIN_TIME_COST, OWASP_MIN_PARALLELISM) == (19456, 2, 1)


def test_production_hasher_is_argon2id_at_owasp_cost_or_more() -> None:
    hasher = production_hasher()
    assert hasher.type is Type.ID
    assert hasher.memory_cost >= OWASP_MIN_MEMORY_KIB
    assert hasher.time_cost >= OWASP_MIN_TIME_COST
    assert hasher.parallelism >= OWASP_MIN_PARALLELISM
    assert meets_owasp_minimum(hasher)


def test_default_passwords_use_the_production_hasher() -> None:
    assert meets_owasp_minimum(Passwords().hasher)


def test_a_production_hash_records_argon2id_at_owasp_cost(production_hash: str) -> None:
    assert production_hash.startswith("$argon2id$")
    params = extract_parameters(production_hash)
    assert params.type is Type.ID
    assert params.memory_cost >= OWASP_MIN_MEMORY_KIB
    assert params.time_cost >= OWASP_MIN_TIME_COST
    assert params.parallelism >= OWASP_MIN_PARALLELISM
    assert SECRET not in production_hash


@pytest.mark.parametrize(
    "hasher",
    [
        PasswordHasher(time_cost=1, memory_cost=65536, parallelism=1),
        PasswordHasher(time_cost=3, memory_cost=19455, parallelism=1),
        PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1, type=Type.I),
    ],
    ids=["one-pass", "too-little-memory", "argon2i"],
)
def test_weaker_hashers_fail_the_owasp_check(hasher: PasswordHasher) -> None:
    assert not meets_owasp_minimum(hasher)


def test_right_password_verifies_and_wrong_one_does_not(fast: Passwords) -> None:
    stored = fast.hash(SECRET)
    assert fast.verify(stored, SECRET) is True
    assert fast.verify(stored, SECRET + " ") is False
    assert fast.verify(stored, "") is False


def test_unicode_passwords_verify(fast: Passwords) -> None:
    stored = fast.hash("pässwörd-密码-🔑")
    assert fast.verify(stored, "pässwörd-密码-🔑")
    assert not fast.verify(stored, "passwort-密码-🔑")


def test_each_hash_has_its_own_salt(fast: Passwords) -> None:
    assert fast.hash(SECRET) != fast.hash(SECRET)


def test_a_hash_made_with_other_parameters_still_verifies(
    fast: Passwords, production_hash: str
) -> None:
    assert fast.verify(production_hash, SECRET)


def test_no_hash_never_verifies(fast: Passwords) -> None:
    assert fast.verify(None, SECRET) is False
    assert fast.verify(None, "") is False


@pytest.mark.parametrize(
    "corrupt",
    [
        "$argon2id$garbage-hash-content",
        "garbage-hash-content",
        "$argon2id$v=19$m=8,t=1,p=1$garbage-hash-content$x",
    ],
)
def test_a_corrupt_hash_is_refused_and_logged_without_its_content(
    fast: Passwords, caplog: pytest.LogCaptureFixture, corrupt: str
) -> None:
    caplog.set_level(logging.DEBUG)
    assert fast.verify(corrupt, SECRET) is False
    assert "not a valid Argon2 hash" in caplog.text
    assert "garbage-hash-content" not in caplog.text


def test_passwords_and_hashes_are_never_logged(
    fast: Passwords, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stored = fast.hash(SECRET)
    fast.verify(stored, SECRET)
    fast.verify(stored, "wrong password")
    fast.verify(None, SECRET)
    fast.verify("not-a-hash", SECRET)
    assert SECRET not in caplog.text
    assert stored not in caplog.text


class _HeldHasher(PasswordHasher):
    """Cheap Argon2id whose calls wait for the test's go-ahead, counting how many run at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.go = threading.Event()

    def _held(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.go.wait(10)
        with self.lock:
            self.running -= 1

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self._held()
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self._held()
        return super().verify(hash, password)


@pytest.mark.parametrize("operation", ["hash", "verify"])
def test_at_most_max_parallel_hashes_run_at_once(operation: str) -> None:
    """Sixteen callers, two slots: two compute, the others wait (each hash holds 64 MiB)."""
    hasher = _HeldHasher()
    passwords = Passwords(hasher, max_parallel=2)
    stored = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(SECRET)
    call = (
        (lambda: passwords.hash(SECRET))
        if operation == "hash"
        else (lambda: passwords.verify(stored, SECRET))
    )
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(16)]
    for thread in threads:
        thread.start()
    wait_for(lambda: hasher.running == 2, timeout=10, what="two calls computing")
    # Had the others not waited for a slot, they would be computing by now.
    with pytest.raises(AssertionError, match="timed out"):
        wait_for(lambda: hasher.running > 2, timeout=0.3, what="a third call")
    hasher.go.set()
    for thread in threads:
        thread.join(10)
    assert hasher.most == 2
    assert len(results) == 16
    if operation == "verify":
        assert results == [True] * 16


def test_max_parallel_defaults_to_one_per_core() -> None:
    assert Passwords().max_parallel == (os.cpu_count() or 2)
