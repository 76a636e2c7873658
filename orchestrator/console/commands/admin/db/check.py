"""nua-orchestrator db check"""

from __future__ import annotations

from cleo.helpers import option

from orchestrator.console.application import NuaCommand
from orchestrator.errors import ExitCode
from orchestrator.services import db_check


class DbCheckCommand(NuaCommand):
    name = "db check"
    description = "Check the database's integrity, foreign keys and schema revision."
    help = (
        "Read-only: works whether the orchestrator runs or not. Each finding says what "
        "to do. Exit codes: 0 all is well; 1 a finding needs action."
    )
    options = [option("json", None, "Print the report as JSON.")]

    def handle(self) -> int:
        report = db_check.check(self.locations())
        code = ExitCode.OK if report.ok else ExitCode.ERROR
        if self.option("json"):
            self.write_json(report.to_json())
            return int(code)
        self.line(f"database {report.database}: <info>{'ok' if report.ok else 'problems'}</info>")
        self.line(f"  schema {report.revision or '-'} (this code: {report.head})")
        for name, state in report.checks.items():
            self.line(f"  {name:<13} {state}")
        for finding in report.findings:
            self.line(f"<comment>problem:</comment> {finding.problem}")
            self.line(f"  what to do: {finding.advice}")
        return int(code)
