"""`db check`: is the database sound, and at the schema this code expects?

Read-only, so it runs whether the orchestrator runs or not, and never
changes a byte of the database.
"""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.db import readonly
from orchestrator.db.schema import head_revision, known_revisions
from orchestrator.host.locations import Locations
from orchestrator.services.backup import sqlite_database

RESTORE = "restore a backup: `nua-orchestrator backups` lists them, `nua-orchestrator restore PATH`"
UPGRADE = "run `nua-orchestrator start` (or `restart`) to upgrade the schema"


@dataclass(frozen=True)
class Finding:
    """One problem: which check found it, what it is, and what to do."""

    check: str
    problem: str
    advice: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "problem": self.problem, "advice": self.advice}


@dataclass
class CheckReport:
    database: Path
    head: str
    revision: str | None = None
    checks: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, check: str, problem: str, advice: str) -> None:
        self.checks[check] = "problem"
        self.findings.append(Finding(check, problem, advice))

    def to_json(self) -> dict[str, Any]:
        return {
            "database": str(self.database),
            "ok": self.ok,
            "schema_revision": self.revision,
            "head_revision": self.head,
            "checks": self.checks,
            "findings": [f.to_json() for f in self.findings],
        }


def check(locations: Locations) -> CheckReport:
    """Run every check on the database; each problem comes with what to do."""
    path = sqlite_database(locations, "db check")
    report = CheckReport(database=path, head=head_revision())
    try:
        st = path.lstat()
    except FileNotFoundError:
        report.add("file", f"no database at {path}", "run `nua-orchestrator start` to create it")
        return report
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        report.add("file", f"{path} is not a regular file", f"move it aside, then {RESTORE}")
        return report
    if st.st_mode & 0o077:
        report.add(
            "file",
            f"{path} has mode {stat.S_IMODE(st.st_mode):04o}; it holds secrets",
            f"run chmod 600 {path}",
        )
    else:
        report.checks["file"] = "ok"
    if st.st_size and not readonly.has_sqlite_header(path):
        report.add("header", f"{path} is not an SQLite database", RESTORE)
        return report
    try:
        with closing(readonly.open_readonly(path)) as conn:
            _check_contents(conn, report)
    except sqlite3.Error as exc:
        report.add("integrity", f"{path} cannot be read: {exc}", RESTORE)
    return report


def _check_contents(conn: sqlite3.Connection, report: CheckReport) -> None:
    errors = readonly.integrity_errors(conn)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        report.add("integrity", f"integrity_check: {errors[0]}{more}", RESTORE)
    else:
        report.checks["integrity"] = "ok"
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent, fk_id = broken[0]
        report.add(
            "foreign_keys",
            f"{len(broken)} row(s) point at rows that do not exist (first: "
            f"{_dangling(conn, table, rowid, parent, fk_id)})",
            f"{RESTORE}; or, if those rows are not needed, delete them with the orchestrator "
            f"stopped (`PRAGMA foreign_key_check` lists them all)",
        )
    else:
        report.checks["foreign_keys"] = "ok"
    tables = readonly.table_names(conn)
    report.revision = readonly.revision(conn)
    if report.revision is None:
        if tables:
            report.add(
                "schema",
                "tables but no alembic_version: not a Nua database",
                f"move it aside, then {RESTORE}",
            )
        else:
            report.add("schema", "the database is empty", UPGRADE)
    elif report.revision not in known_revisions():
        report.add(
            "schema",
            f"schema revision {report.revision} is newer than this nua-orchestrator "
            f"(head {report.head})",
            "upgrade nua-orchestrator, or " + RESTORE,
        )
    elif report.revision != report.head:
        report.add(
            "schema",
            f"schema revision {report.revision} is older than this code's {report.head}",
            UPGRADE,
        )
    else:
        report.checks["schema"] = "ok"


def _quoted(name: str) -> str:
    """An SQL identifier; the names come from SQLite's own catalogue."""
    return '"' + name.replace('"', '""') + '"'


def _dangling(
    conn: sqlite3.Connection, table: str, rowid: int | None, parent: str, fk_id: int
) -> str:
    """One row that breaks a foreign key, as `releases row 1: label 'x' is not in apps.label`."""
    pairs = [
        (column, target)
        for id_, _seq, _parent, column, target, *_rest in conn.execute(
            f"PRAGMA foreign_key_list({_quoted(table)})"
        )
        if id_ == fk_id
    ]
    where = f"{table} row {rowid}"
    if not pairs or rowid is None:
        return f"{where} -> {parent}"
    columns = ", ".join(_quoted(column) for column, _target in pairs)
    values = conn.execute(
        f"SELECT {columns} FROM {_quoted(table)} WHERE rowid = ?",  # noqa: S608
        (rowid,),
    ).fetchone()
    if values is None:
        return f"{where} -> {parent}"
    said = ", ".join(
        f"{column} {value!r} is not in {parent}.{target or 'its primary key'}"
        for (column, target), value in zip(pairs, values, strict=True)
    )
    return f"{where}: {said}"
