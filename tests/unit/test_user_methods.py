"""orchestrator/rpc/methods/user.py: `user.*` on a real worker context and SQLite file."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.db.engine import make_engine
from orchestrator.db.models import User
from orchestrator.db.schema import upgrade
from orchestrator.rpc.context import WorkerContext
from orchestrator.rpc.errors import AlreadyExists, InvalidArgument, NotFound, RpcError
from orchestrator.rpc.idempotency import IDEMPOTENCY
from orchestrator.rpc.methods import user as user_module
from orchestrator.rpc.methods.user import UserMethods
from orchestrator.rpc.registry import Registry
from orchestrator.rpc.writer import Writer
from orchestrator.security.passwords import Passwords, meets_owasp_minimum

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test password)
USER_KEYS = {"id", "username", "email", "role", "has_password", "created_at", "updated_at"}


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database at head, migrated once: each test starts from a copy of it."""
    path = tmp_path_factory.mktemp("template") / "nua.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            upgrade(connection)
    finally:
        engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture
def context(short_home: Path, migrated_database: Path) -> Iterator[WorkerContext]:
    path = short_home / "nua.db"
    shutil.copyfile(migrated_database, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    writer = Writer(engine)
    writer.start()
    threads = ThreadPoolExecutor(4)
    try:
        yield WorkerContext(
            engine=engine,
            writer=writer,
            database=url,
            endpoint="ipc://x",
            schema_revision=None,
            threads=threads,
        )
    finally:
        threads.shutdown(wait=True)
        writer.stop()
        engine.dispose()


def answered(value: Any) -> Any:
    """What the caller is answered: a method's Future (a queued write) once it is done."""
    while isinstance(value, Future):
        value = value.result(timeout=30)
    return value


class Answered:
    """A namespace as the worker serves it: each method's answer, waited for."""

    def __init__(self, namespace: UserMethods) -> None:
        self.namespace = namespace
        self.passwords = namespace.passwords

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.namespace, name)
        return lambda *args, **kwargs: answered(method(*args, **kwargs))


@pytest.fixture
def users(context: WorkerContext) -> UserMethods:
    """The namespace with cheap hashing (production parameters are tested apart)."""
    fast = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    return Answered(UserMethods(context, passwords=fast))  # type: ignore[return-value]


def stored(context: WorkerContext) -> list[User]:
    """Every row of the users table, read behind the namespace's back."""
    with context.read() as session:
        return list(session.scalars(select(User).order_by(User.id)))


def add_people(users: UserMethods) -> list[dict[str, Any]]:
    return [
        users.add("carol", "Carol@Example.org", role="admin"),
        users.add("alice", "alice@site.net"),
        users.add("dave", "dave@example.org", password=PASSWORD),
        users.add("bob", "bob@site.net", role="admin"),
        users.add("erin", "erin@other.io"),
    ]


def raises(error: type[RpcError], field: str, call: Callable[[], Any]) -> RpcError:
    with pytest.raises(error) as info:
        call()
    assert info.value.data["field"] == field, info.value.message
    return info.value


# --- registration -------------------------------------------------------------------------


def test_methods_are_registered_with_their_kind_and_doc(context: WorkerContext) -> None:
    registry = Registry()
    registry.add_namespace(UserMethods(context))
    changing = {"user.add", "user.update", "user.delete", "user.set_password"}
    reading = {"user.get", "user.list", "user.count", "user.check_password"}
    assert set(registry.methods) == changing | reading
    for name, method in registry.methods.items():
        assert method.changes == (name in changing), name
        assert method.doc, name
        json.dumps(method.describe())


def test_the_default_namespace_hashes_at_production_cost(context: WorkerContext) -> None:
    assert meets_owasp_minimum(UserMethods(context).passwords.hasher)


# --- add and get --------------------------------------------------------------------------


def test_add_returns_the_user_and_get_finds_it(users: UserMethods) -> None:
    added = users.add("alice", "Alice@Example.ORG")
    assert set(added) == USER_KEYS
    assert added["username"] == "alice"
    assert added["email"] == "alice@example.org"
    assert added["role"] == "user"
    assert added["has_password"] is False
    assert isinstance(added["id"], int)
    created = datetime.fromisoformat(added["created_at"])
    assert created.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    assert added["updated_at"] == added["created_at"]
    assert users.get("alice") == added


def test_add_an_admin_with_a_password(users: UserMethods, context: WorkerContext) -> None:
    added = users.add("root.admin", "root@example.org", role="admin", password=PASSWORD)
    assert added["role"] == "admin"
    assert added["has_password"] is True
    [row] = stored(context)
    assert row.password_hash is not None
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert users.check_password("root.admin", PASSWORD) == {"valid": True}


def test_add_accepts_values_at_the_limits(users: UserMethods) -> None:
    users.add("ab", "a@b.co", password="x" * 8)
    users.add("a" * 32, "x" * 241 + "@example.org", password="y" * 1024)
    users.add("a.b_c-9", "first.last+tag@mail.example.org")
    assert users.count() == 3
    assert users.check_password("a" * 32, "y" * 1024) == {"valid": True}


BAD_ADDS: list[tuple[dict[str, Any], str]] = [
    ({"username": 7}, "username"),
    ({"username": None}, "username"),
    ({"username": ["alice"]}, "username"),
    ({"username": "a"}, "username"),
    ({"username": "a" * 33}, "username"),
    ({"username": "Alice"}, "username"),
    ({"username": "1alice"}, "username"),
    ({"username": "_alice"}, "username"),
    ({"username": "al ice"}, "username"),
    ({"username": "al@ice"}, "username"),
    ({"username": "alice\n"}, "username"),
    ({"username": "élodie"}, "username"),
    ({"email": 5}, "email"),
    ({"email": None}, "email"),
    ({"email": "alice"}, "email"),
    ({"email": "alice@localhost"}, "email"),
    ({"email": "@example.org"}, "email"),
    ({"email": "a@b@example.org"}, "email"),
    ({"email": "al ice@example.org"}, "email"),
    ({"email": "alice@example.org "}, "email"),
    ({"email": "alice@exa\tmple.org"}, "email"),
    ({"email": "alice\u00a0b@example.org"}, "email"),
    ({"email": "alice@exa\u2003mple.org"}, "email"),
    ({"email": "alice\u200b@example.org"}, "email"),
    ({"email": "alice@example..org"}, "email"),
    ({"email": "alice@.example.org"}, "email"),
    ({"email": "alice@example.org."}, "email"),
    ({"email": "a" * 243 + "@example.org"}, "email"),
    ({"role": "root"}, "role"),
    ({"role": "Admin"}, "role"),
    ({"role": None}, "role"),
    ({"role": 1}, "role"),
    ({"password": 12345678}, "password"),
    ({"password": b"bytes-password"}, "password"),
    ({"password": "short"}, "password"),
    ({"password": ""}, "password"),
    ({"password": "z" * 1025}, "password"),
]


@pytest.mark.parametrize(("change", "field"), BAD_ADDS)
def test_add_refuses_invalid_input_and_writes_nothing(
    users: UserMethods, context: WorkerContext, change: dict[str, Any], field: str
) -> None:
    params = {"username": "alice", "email": "alice@example.org", **change}
    error = raises(InvalidArgument, field, lambda: users.add(**params))
    if field == "password" and isinstance(change["password"], str) and change["password"]:
        assert change["password"] not in error.message
    assert stored(context) == []
    assert context.writer.jobs == 0


def test_add_refuses_a_taken_username(users: UserMethods, context: WorkerContext) -> None:
    users.add("alice", "alice@example.org")
    raises(AlreadyExists, "username", lambda: users.add("alice", "other@example.org"))
    assert [u.email for u in stored(context)] == ["alice@example.org"]


def test_add_refuses_a_taken_email_whatever_its_case(
    users: UserMethods, context: WorkerContext
) -> None:
    users.add("alice", "alice@example.org")
    raises(AlreadyExists, "email", lambda: users.add("alicia", "ALICE@example.org"))
    assert [u.username for u in stored(context)] == ["alice"]


def test_a_taken_username_is_reported_before_a_taken_email(users: UserMethods) -> None:
    users.add("alice", "alice@example.org")
    raises(AlreadyExists, "username", lambda: users.add("alice", "alice@example.org"))


def test_get_an_unknown_user_is_not_found(users: UserMethods) -> None:
    error = raises(NotFound, "username", lambda: users.get("nobody"))
    assert "nobody" in error.message


@pytest.mark.parametrize("name", [None, 3, "", "Nobody", "x" * 40])
def test_get_refuses_what_cannot_be_a_username(users: UserMethods, name: Any) -> None:
    raises(InvalidArgument, "username", lambda: users.get(name))


# --- update -------------------------------------------------------------------------------


def test_update_changes_email_role_and_name(users: UserMethods) -> None:
    before = users.add("alice", "alice@example.org")
    after = users.update("alice", email="Alice@New.org", role="admin", new_username="alicia")
    assert after["id"] == before["id"]
    assert (after["username"], after["email"], after["role"]) == (
        "alicia",
        "alice@new.org",
        "admin",
    )
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] >= before["updated_at"]
    assert users.get("alicia") == after
    raises(NotFound, "username", lambda: users.get("alice"))


def test_update_one_field_keeps_the_others(users: UserMethods) -> None:
    users.add("alice", "alice@example.org", password=PASSWORD)
    after = users.update("alice", role="admin")
    assert (after["username"], after["email"], after["has_password"]) == (
        "alice",
        "alice@example.org",
        True,
    )


def test_update_without_a_change_changes_nothing(
    users: UserMethods, context: WorkerContext
) -> None:
    before = users.add("alice", "alice@example.org")
    assert users.update("alice") == before
    assert users.update("alice", email="ALICE@example.org", new_username="alice") == before


def test_update_refuses_a_taken_name_or_email(users: UserMethods) -> None:
    users.add("alice", "alice@example.org")
    users.add("bob", "bob@example.org")
    raises(AlreadyExists, "new_username", lambda: users.update("alice", new_username="bob"))
    raises(AlreadyExists, "email", lambda: users.update("alice", email="BOB@example.org"))
    # A refused update is rolled back whole: the role given with it is not applied either.
    raises(
        AlreadyExists, "email", lambda: users.update("alice", role="admin", email="bob@example.org")
    )
    assert users.get("alice")["role"] == "user"
    assert users.get("bob")["email"] == "bob@example.org"


def test_update_an_unknown_user_is_not_found(users: UserMethods) -> None:
    raises(NotFound, "username", lambda: users.update("nobody", role="admin"))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"username": 1}, "username"),
        ({"new_username": "Bad Name"}, "new_username"),
        ({"new_username": 5}, "new_username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": 5}, "email"),
        ({"role": "superuser"}, "role"),
        ({"role": True}, "role"),
    ],
)
def test_update_refuses_invalid_input_and_writes_nothing(
    users: UserMethods, context: WorkerContext, params: dict[str, Any], field: str
) -> None:
    before = users.add("alice", "alice@example.org")
    jobs = context.writer.jobs
    call = {"username": "alice", **params}
    raises(InvalidArgument, field, lambda: users.update(**call))
    assert context.writer.jobs == jobs
    assert users.get("alice") == before


# --- delete -------------------------------------------------------------------------------


def test_delete_removes_the_user_and_frees_its_name_and_email(users: UserMethods) -> None:
    users.add("alice", "alice@example.org")
    users.add("bob", "bob@example.org")
    assert users.delete("alice") == {"deleted": "alice"}
    raises(NotFound, "username", lambda: users.get("alice"))
    raises(NotFound, "username", lambda: users.delete("alice"))
    assert users.count() == 1
    assert users.add("alice", "alice@example.org")["username"] == "alice"


def test_delete_refuses_invalid_input(users: UserMethods, context: WorkerContext) -> None:
    raises(InvalidArgument, "username", lambda: users.delete(None))
    assert context.writer.jobs == 0


# --- passwords ----------------------------------------------------------------------------


def test_set_and_check_password(users: UserMethods) -> None:
    users.add("alice", "alice@example.org")
    assert users.check_password("alice", PASSWORD) == {"valid": False}
    assert users.set_password("alice", PASSWORD) == {"username": "alice", "password_set": True}
    assert users.get("alice")["has_password"] is True
    assert users.check_password("alice", PASSWORD) == {"valid": True}
    assert users.check_password("alice", PASSWORD.upper()) == {"valid": False}
    assert users.check_password("alice", "") == {"valid": False}
    users.set_password("alice", "another long password")
    assert users.check_password("alice", PASSWORD) == {"valid": False}
    assert users.check_password("alice", "another long password") == {"valid": True}


def test_set_password_bumps_updated_at(users: UserMethods) -> None:
    before = users.add("alice", "alice@example.org")
    users.set_password("alice", PASSWORD)
    assert users.get("alice")["updated_at"] >= before["updated_at"]


def test_set_password_for_an_unknown_user_is_not_found(users: UserMethods) -> None:
    raises(NotFound, "username", lambda: users.set_password("nobody", PASSWORD))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": None}, "password"),
        ({"password": 123456789}, "password"),
        ({"password": "p" * 1025}, "password"),
        ({"username": 9}, "username"),
    ],
)
def test_set_password_refuses_invalid_input_and_writes_nothing(
    users: UserMethods, context: WorkerContext, params: dict[str, Any], field: str
) -> None:
    users.add("alice", "alice@example.org")
    jobs = context.writer.jobs
    call = {"username": "alice", "password": PASSWORD, **params}
    error = raises(InvalidArgument, field, lambda: users.set_password(**call))
    assert str(params.get("password")) not in error.message
    assert context.writer.jobs == jobs
    assert stored(context)[0].password_hash is None


def test_check_password_of_an_unknown_user_is_not_found(users: UserMethods) -> None:
    raises(NotFound, "username", lambda: users.check_password("nobody", PASSWORD))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"password": None}, "password"),
        ({"password": 1234}, "password"),
        ({"password": "p" * 1025}, "password"),
        ({"username": ["alice"]}, "username"),
    ],
)
def test_check_password_refuses_invalid_input(
    users: UserMethods, params: dict[str, Any], field: str
) -> None:
    users.add("alice", "alice@example.org", password=PASSWORD)
    call = {"username": "alice", "password": PASSWORD, **params}
    raises(InvalidArgument, field, lambda: users.check_password(**call))


def test_the_hash_never_leaves_the_namespace(users: UserMethods, context: WorkerContext) -> None:
    results: list[Any] = [
        users.add("alice", "alice@example.org", password=PASSWORD),
        users.add("bob", "bob@example.org"),
        users.set_password("bob", PASSWORD),
        users.get("alice"),
        users.get("bob"),
        users.list(),
        users.list(search="a", order_by="created_at", descending=True),
        users.update("alice", role="admin"),
        users.check_password("alice", PASSWORD),
        users.count(),
        users.delete("bob"),
    ]
    hashes = [row.password_hash for row in stored(context)]
    assert all(hashes)
    dumped = json.dumps(results)
    assert "argon2" not in dumped
    assert "password_hash" not in dumped
    assert PASSWORD not in dumped
    for value in hashes:
        assert value not in dumped


# --- list and count -----------------------------------------------------------------------


def names(page: dict[str, Any]) -> list[str]:
    return [u["username"] for u in page["users"]]


def test_list_orders_by_username_by_default(users: UserMethods) -> None:
    add_people(users)
    page = users.list()
    assert names(page) == ["alice", "bob", "carol", "dave", "erin"]
    assert (page["limit"], page["offset"], page["next_offset"]) == (50, 0, None)
    assert all(set(u) == USER_KEYS for u in page["users"])
    assert names(users.list(descending=True)) == ["erin", "dave", "carol", "bob", "alice"]


def test_list_orders_by_email_and_by_creation(users: UserMethods) -> None:
    people = add_people(users)
    by_email = [u["email"] for u in users.list(order_by="email")["users"]]
    assert by_email == sorted(u["email"] for u in people)
    by_creation = names(users.list(order_by="created_at"))
    assert by_creation == ["carol", "alice", "dave", "bob", "erin"]
    assert names(users.list(order_by="created_at", descending=True)) == by_creation[::-1]


def test_list_pages_follow_next_offset_to_the_end(users: UserMethods) -> None:
    add_people(users)
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = users.list(limit=2, offset=offset)
        assert page["limit"] == 2
        assert page["offset"] == offset
        seen += names(page)
        offset = page["next_offset"]
        pages += 1
    assert seen == ["alice", "bob", "carol", "dave", "erin"]
    assert pages == 3


def test_a_full_last_page_has_no_next_offset(users: UserMethods) -> None:
    add_people(users)
    assert users.list(limit=5)["next_offset"] is None
    assert users.list(limit=4)["next_offset"] == 4
    assert users.list(limit=2, offset=3) == {
        "users": users.list()["users"][3:5],
        "limit": 2,
        "offset": 3,
        "next_offset": None,
    }
    assert users.list(offset=10) == {"users": [], "limit": 50, "offset": 10, "next_offset": None}


def test_list_and_count_filter_by_role(users: UserMethods) -> None:
    add_people(users)
    assert names(users.list(role="admin")) == ["bob", "carol"]
    assert names(users.list(role="user", order_by="email")) == ["alice", "dave", "erin"]
    assert users.count() == 5
    assert users.count(role="admin") == 2
    assert users.count(role="user") == 3


def test_search_ignores_case_and_matches_username_or_email(users: UserMethods) -> None:
    add_people(users)
    assert names(users.list(search="ALI")) == ["alice"]
    assert names(users.list(search="Site.NET")) == ["alice", "bob"]
    assert names(users.list(search="example", role="admin")) == ["carol"]
    assert users.count(search="example") == 2
    assert users.count(search="o", role="admin") == 2
    assert users.count(search="") == 5
    assert users.list(search="nobody-like-this") == {
        "users": [],
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }


def test_search_takes_like_wildcards_literally(users: UserMethods) -> None:
    users.add("a_b", "ab@example.org")
    users.add("axb", "axb@example.org")
    users.add("percent", "100%@example.org")
    users.add("slash", "a/b@example.org")
    users.add("plain", "plain@example.org")
    assert names(users.list(search="_")) == ["a_b"]
    assert names(users.list(search="a_b")) == ["a_b"]
    assert names(users.list(search="%")) == ["percent"]
    assert names(users.list(search="0%@")) == ["percent"]
    assert names(users.list(search="/")) == ["slash"]
    assert users.count(search="_") == 1
    assert users.count(search="%") == 1


def test_list_accepts_the_limit_bounds(users: UserMethods) -> None:
    add_people(users)
    assert len(users.list(limit=1)["users"]) == 1
    assert len(users.list(limit=1000)["users"]) == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"role": "root"}, "role"),
        ({"role": 1}, "role"),
        ({"search": 5}, "search"),
        ({"search": ["a"]}, "search"),
        ({"search": "s" * 255}, "search"),
        ({"order_by": "password_hash"}, "order_by"),
        ({"order_by": "id; drop table users"}, "order_by"),
        ({"order_by": None}, "order_by"),
        ({"order_by": 1}, "order_by"),
        ({"descending": "yes"}, "descending"),
        ({"descending": 1}, "descending"),
        ({"descending": None}, "descending"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": 10.0}, "limit"),
        ({"limit": None}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": False}, "offset"),
        ({"offset": "0"}, "offset"),
        ({"offset": 1.5}, "offset"),
        ({"offset": 2**64}, "offset"),
    ],
)
def test_list_refuses_invalid_input(users: UserMethods, params: dict[str, Any], field: str) -> None:
    raises(InvalidArgument, field, lambda: users.list(**params))


@pytest.mark.parametrize(
    ("params", "field"),
    [({"role": "guest"}, "role"), ({"search": 1}, "search"), ({"search": "s" * 255}, "search")],
)
def test_count_refuses_invalid_input(
    users: UserMethods, params: dict[str, Any], field: str
) -> None:
    raises(InvalidArgument, field, lambda: users.count(**params))


def captured_sql(context: WorkerContext, call: Callable[[], Any]) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(context.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(context.engine, "before_cursor_execute", record)
    return statements


@pytest.mark.parametrize("order_by", ["username", "email", "created_at"])
@pytest.mark.parametrize("role", [None, "admin"])
@pytest.mark.parametrize("descending", [False, True])
def test_every_list_page_walks_an_index_instead_of_sorting(
    users: UserMethods,
    context: WorkerContext,
    order_by: str,
    role: str | None,
    descending: bool,
) -> None:
    add_people(users)
    [(statement, parameters)] = captured_sql(
        context, lambda: users.list(role=role, order_by=order_by, descending=descending)
    )
    with context.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "USING" in details and "INDEX" in details, details
    assert "TEMP B-TREE" not in details, details


# --- the database behind the namespace ----------------------------------------------------


def test_the_database_refuses_an_unknown_role(context: WorkerContext) -> None:
    with pytest.raises(IntegrityError, match="ck_users_role"), context.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, email, role, created_at, updated_at) "
                "VALUES ('eve', 'eve@example.org', 'root', '2026-01-01', '2026-01-01')"
            )
        )


@pytest.mark.parametrize(
    ("duplicate", "field"),
    [({"username": "alice"}, "username"), ({"email": "alice@example.org"}, "email")],
)
def test_a_unique_constraint_failing_at_flush_is_already_exists(
    users: UserMethods, context: WorkerContext, duplicate: dict[str, str], field: str
) -> None:
    """The backstop behind the checks: a row that slipped past them is still reported."""
    users.add("alice", "alice@example.org", password=PASSWORD)
    hash_value = stored(context)[0].password_hash
    assert hash_value is not None

    def job(session: Session) -> None:
        fields = {"username": "other", "email": "other@example.org", **duplicate}
        session.add(
            User(
                **fields,
                role="user",
                password_hash=hash_value,
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
        user_module._flush(session, username_field="username")

    with pytest.raises(AlreadyExists) as info:
        context.write(job)
    assert info.value.data["field"] == field
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert hash_value not in info.value.message
    assert len(stored(context)) == 1


# --- retries ------------------------------------------------------------------------------


def test_a_retried_add_with_the_same_key_is_applied_once(users: UserMethods) -> None:
    """What a changing method returns is what retries get back: it must be plain JSON."""
    token = IDEMPOTENCY.set(("key-1", "user.add"))
    try:
        first = users.add("alice", "alice@example.org", password=PASSWORD)
        again = users.add("alice", "alice@example.org", password=PASSWORD)
    finally:
        IDEMPOTENCY.reset(token)
    assert again == first
    assert json.loads(json.dumps(first)) == first
    assert users.count() == 1


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_adds_are_all_applied(users: UserMethods, context: WorkerContext) -> None:
    count = 16
    barrier = threading.Barrier(count, timeout=10)

    def add(i: int) -> dict[str, Any]:
        barrier.wait()
        return users.add(f"user{i:02d}", f"user{i:02d}@example.org", password=PASSWORD)

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(add, range(count)))
    assert len({r["id"] for r in results}) == count
    assert sorted(r["username"] for r in results) == [f"user{i:02d}" for i in range(count)]
    assert users.count() == count
    assert sorted(u.username for u in stored(context)) == [f"user{i:02d}" for i in range(count)]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda n, i: (f"same{n}", f"mail{n}x{i}@example.org"), "username"),
        (lambda n, i: (f"name{n}x{i}", f"same{n}@example.org"), "email"),
    ],
    ids=["username", "email"],
)
def test_a_raced_duplicate_succeeds_exactly_once(
    users: UserMethods,
    context: WorkerContext,
    make: Callable[[int, int], tuple[str, str]],
    field: str,
) -> None:
    rounds = 10
    for n in range(rounds):
        barrier = threading.Barrier(2, timeout=10)

        def add(i: int, n: int = n, barrier: threading.Barrier = barrier) -> Any:
            username, email = make(n, i)
            barrier.wait()
            try:
                return users.add(username, email)
            except AlreadyExists as exc:
                return exc

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(add, range(2)))
        errors = [o for o in outcomes if isinstance(o, AlreadyExists)]
        assert len(errors) == 1, outcomes
        assert errors[0].data["field"] == field
    assert users.count() == rounds


def test_every_whitespace_but_the_space_is_unprintable() -> None:
    # _email refuses spaces and unprintable characters in one pass each, which
    # covers every whitespace character only if this holds for all of Unicode.
    exceptions = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if chr(code).isspace() and chr(code).isprintable() and chr(code) != " "
    ]
    assert exceptions == []
