"""`user.*`: the host's user accounts.

Parameters are checked here, by type and value, before any work is done; the
checks that depend on the database (a name taken, a user missing) run inside
the write job, so that retries and concurrent requests see one truth. A
password hash never leaves this module: results carry `has_password` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from orchestrator.db.models import USER_ROLES, User, utcnow
from orchestrator.db.prepared import Prepared, Statements
from orchestrator.rpc.errors import AlreadyExists, InvalidArgument, NotFound
from orchestrator.rpc.registry import Namespace, public
from orchestrator.security.passwords import Passwords

if TYPE_CHECKING:
    from orchestrator.rpc.context import WorkerContext

USERNAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{1,31}")
USERNAME_RULE = (
    "2 to 32 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter"
)
EMAIL_MAX = 254
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
LIMIT_MAX = 1000
OFFSET_MAX = 2**53 - 1  # the largest integer every JSON client reads exactly
SEARCH_MAX = 254

# Each ordering ends on a unique column, so that pages never overlap or skip.
ORDERINGS: dict[str, tuple[InstrumentedAttribute[Any], ...]] = {
    "username": (User.username,),
    "email": (User.email,),
    "created_at": (User.created_at, User.id),
}


# user.add's insert, returning the id: compiled once, run by the writer on the driver.
_INSERT_USER = Prepared(
    insert(User).returning(User.id),
    ("username", "email", "role", "password_hash", "created_at", "updated_at"),
)


class UserMethods(Namespace):
    """User accounts: create, find, list, change, delete, and their passwords."""

    namespace = "user"

    def __init__(self, context: WorkerContext, passwords: Passwords | None = None) -> None:
        super().__init__(context)
        self.passwords = passwords if passwords is not None else Passwords()

    @public(changes=True, inline=True)
    def add(
        self, username: str, email: str, role: str = "user", password: str | None = None
    ) -> Future[dict[str, Any]]:
        """Create a user and return it.

        `username`: 2 to 32 characters, lower-case letters, digits, '.', '_' or
        '-', starting with a letter. `email` is stored lower-cased; both are
        unique. `role`: "admin" or "user". `password` (8 to 1024 characters) is
        optional: without one the user cannot log in with a password.
        """
        # Runs on the worker's loop: checks, then queues the insert; the answer
        # goes out when the writer has committed it (no thread waits meanwhile).
        username = _username(username)
        email = _email(email)
        role = _role(role)
        if password is None:
            return self.context.submit_write(_insert_user(username, email, role, None))
        checked = _password(password)

        def hash_then_insert() -> Future[dict[str, Any]]:
            # Hashed on a thread, before the job: neither the loop nor the writer
            # may wait for a slow hash.
            password_hash = self.passwords.hash(checked)
            return self.context.submit_write(_insert_user(username, email, role, password_hash))

        return self.context.in_thread(hash_then_insert)  # type: ignore[return-value]

    @public
    def get(self, username: str) -> dict[str, Any]:
        """The user named `username`."""
        username = _username(username)
        with self.context.read() as session:
            return _public(_find(session, username))

    @public
    def list(
        self,
        role: str | None = None,
        search: str | None = None,
        order_by: str = "username",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of users: {"users", "limit", "offset", "next_offset"}.

        `role` keeps one role; `search` keeps users whose username or email
        contains it, ignoring case. `order_by`: "username", "email" or
        "created_at". `limit`: 1 to 1000. `next_offset` is the offset of the
        next page, or null on the last one; `user.count` gives the total.
        """
        where = _filters(role, search)
        if not isinstance(order_by, str) or order_by not in ORDERINGS:
            raise InvalidArgument(
                f"order_by must be one of {', '.join(ORDERINGS)}", field="order_by"
            )
        if not isinstance(descending, bool):
            raise InvalidArgument("descending must be true or false", field="descending")
        limit = _integer(limit, "limit", 1, LIMIT_MAX)
        offset = _integer(offset, "offset", 0, OFFSET_MAX)
        order = [c.desc() if descending else c.asc() for c in ORDERINGS[order_by]]
        # One row more than asked tells whether a next page exists, without a count.
        query = select(User).where(*where).order_by(*order).limit(limit + 1).offset(offset)
        with self.context.read() as session:
            rows = session.scalars(query).all()
        return {
            "users": [_public(user) for user in rows[:limit]],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None,
        }

    @public
    def count(self, role: str | None = None, search: str | None = None) -> int:
        """How many users match `role` and `search` (the same filters as `user.list`)."""
        where = _filters(role, search)
        with self.context.read() as session:
            return session.scalar(select(func.count()).select_from(User).where(*where)) or 0

    @public(changes=True)
    def update(
        self,
        username: str,
        email: str | None = None,
        role: str | None = None,
        new_username: str | None = None,
    ) -> dict[str, Any]:
        """Change a user's email, role or username, and return the user.

        Parameters left out (or null) are kept. `new_username` and `email`
        follow the rules of `user.add` and must not belong to another user.
        """
        username = _username(username)
        email = None if email is None else _email(email)
        role = None if role is None else _role(role)
        new_username = None if new_username is None else _username(new_username, "new_username")

        def job(session: Session) -> dict[str, Any]:
            user = _find(session, username)
            changed = False
            if new_username is not None and new_username != user.username:
                if _taken(session, User.username, new_username):
                    raise _username_taken(new_username, "new_username")
                user.username = new_username
                changed = True
            if email is not None and email != user.email:
                if _taken(session, User.email, email):
                    raise _email_taken(email)
                user.email = email
                changed = True
            if role is not None and role != user.role:
                user.role = role
                changed = True
            if changed:
                user.updated_at = utcnow()
                _flush(session, username_field="new_username")
            return _public(user)

        return self.context.write(job)

    @public(changes=True)
    def delete(self, username: str) -> dict[str, Any]:
        """Delete the user named `username`: {"deleted": username}."""
        username = _username(username)

        def job(session: Session) -> dict[str, Any]:
            session.delete(_find(session, username))
            session.flush()
            return {"deleted": username}

        return self.context.write(job)

    @public(changes=True)
    def set_password(self, username: str, password: str) -> dict[str, Any]:
        """Set a user's password (8 to 1024 characters): {"username", "password_set": true}."""
        username = _username(username)
        password_hash = self.passwords.hash(_password(password))

        def job(session: Session) -> dict[str, Any]:
            user = _find(session, username)
            user.password_hash = password_hash
            user.updated_at = utcnow()
            session.flush()
            return {"username": username, "password_set": True}

        return self.context.write(job)

    @public
    def check_password(self, username: str, password: str) -> dict[str, Any]:
        """Whether `password` is the user's password: {"valid": bool}.

        A user without a password never matches.
        """
        username = _username(username)
        if not isinstance(password, str):
            raise InvalidArgument("password must be a string", field="password")
        if len(password) > PASSWORD_MAX:
            raise InvalidArgument(
                f"password must be at most {PASSWORD_MAX} characters", field="password"
            )
        with self.context.read() as session:
            row = session.execute(
                select(User.password_hash).where(User.username == username)
            ).one_or_none()
        if row is None:
            raise _not_found(username)
        # Verified after the read transaction ends: a slow hash must not hold it open.
        return {"valid": self.passwords.verify(row.password_hash, password)}


def _insert_user(
    username: str, email: str, role: str, password_hash: str | None
) -> Callable[[Statements], dict[str, Any]]:
    """user.add's write job: one insert, no read first (the unique constraints say it)."""

    def job(statements: Statements) -> dict[str, Any]:
        now = utcnow()
        row = {
            "username": username,
            "email": email,
            "role": role,
            "password_hash": password_hash,
            "created_at": now,
            "updated_at": now,
        }
        try:
            row["id"] = statements.scalar(_INSERT_USER, row)
        except IntegrityError as exc:
            raise _constraint_error(exc, "username", username, email) from None
        return _public(SimpleNamespace(**row))

    return job


def _public(user: User | SimpleNamespace) -> dict[str, Any]:
    """What a client may see of a user: everything but the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "has_password": user.password_hash is not None,
        "created_at": _iso(user.created_at),
        "updated_at": _iso(user.updated_at),
    }


def _iso(moment: datetime) -> str:
    # SQLite keeps no time zone: what it returns is the UTC it was given.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _find(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise _not_found(username)
    return user


def _taken(session: Session, column: InstrumentedAttribute[str], value: str) -> bool:
    return session.scalar(select(User.id).where(column == value)) is not None


def _flush(
    session: Session, username_field: str, username: str | None = None, email: str | None = None
) -> None:
    """Flush; a unique constraint that fails is AlreadyExists, naming the value when known."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise _constraint_error(exc, username_field, username, email) from None


def _constraint_error(
    exc: IntegrityError, username_field: str, username: str | None, email: str | None
) -> Exception:
    """What a failed unique constraint of the users table tells the caller.

    Never the IntegrityError's own text: it lists the row's values, hash included.
    SQLite names the column (users.email), other databases the constraint.
    """
    reason = str(exc.orig).lower()
    if "users.email" in reason or "uq_users_email" in reason:
        if email is not None:
            return _email_taken(email)
        return AlreadyExists("that email is already used by another user", field="email")
    if "users.username" in reason or "uq_users_username" in reason:
        if username is not None:
            return _username_taken(username, username_field)
        return AlreadyExists("that username is taken: choose another", field=username_field)
    return RuntimeError(f"users table constraint failed: {exc.orig}")


def _not_found(username: str) -> NotFound:
    return NotFound(f"no user named {username!r}: user.list shows who exists", field="username")


def _username_taken(username: str, field: str) -> AlreadyExists:
    return AlreadyExists(f"username {username!r} is taken: choose another", field=field)


def _email_taken(email: str) -> AlreadyExists:
    return AlreadyExists(f"email {email!r} is already used by another user", field="email")


def _filters(role: Any, search: Any) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if role is not None:
        where.append(User.role == _role(role))
    if search is not None:
        if not isinstance(search, str) or len(search) > SEARCH_MAX:
            raise InvalidArgument(
                f"search must be a string of at most {SEARCH_MAX} characters", field="search"
            )
        # Usernames and emails are stored lower-case; autoescape makes '%' and '_' literal.
        term = search.lower()
        where.append(
            or_(
                User.username.contains(term, autoescape=True),
                User.email.contains(term, autoescape=True),
            )
        )
    return where


def _username(value: Any, field: str = "username") -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if not USERNAME_PATTERN.fullmatch(value):
        raise InvalidArgument(f"{field} must be {USERNAME_RULE}", field=field)
    return value


def _email(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgument("email must be a string", field="email")
    email = value.lower()
    local, _, domain = email.partition("@")
    if (
        len(email) > EMAIL_MAX
        or email.count("@") != 1
        or not local
        # Every whitespace character but the space is unprintable (checked per
        # code point in tests): one pass in C instead of a loop per character.
        or " " in email
        or not email.isprintable()
        or "." not in domain
        or not all(domain.split("."))
    ):
        raise InvalidArgument(
            f"email must look like name@example.org: one '@', a domain with a dot, "
            f"no spaces, at most {EMAIL_MAX} characters",
            field="email",
        )
    return email


def _role(value: Any) -> str:
    if not isinstance(value, str) or value not in USER_ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(USER_ROLES)}", field="role")
    return value


def _password(value: Any) -> str:
    # Messages say what is wrong, never what was given.
    if not isinstance(value, str):
        raise InvalidArgument("password must be a string", field="password")
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidArgument(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )
    return value


def _integer(value: Any, field: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidArgument(f"{field} must be an integer from {low} to {high}", field=field)
    return value
