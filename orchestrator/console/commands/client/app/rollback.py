"""nua app rollback LABEL [--wait S]"""

from __future__ import annotations

from cleo.helpers import argument

from orchestrator.console.commands.client.app_command import WAIT_OPTION, JobCommand


class AppRollbackCommand(JobCommand):
    name = "app rollback"
    changes = True
    description = "Go back to an app's previous release (its data kept)."
    arguments = [argument("label", "The app's label (see `nua apps`).")]
    options = [WAIT_OPTION]
    help = (
        "Runs as a job, followed step by step like an install; on failure the release\n"
        "that ran keeps running. Ctrl-C or --wait running out stops watching, not the job."
    )

    def handle(self) -> int:
        wait = self.wait_seconds()
        label = self.argument("label")
        job = self.follow(self.rpc("app.rollback", {"label": label}), wait)
        if self.json_wanted():
            self.write_json(job)
        if job.get("state") != "succeeded":
            return self.job_failed(job)
        if not self.json_wanted():
            app = job.get("app") or {}
            release = f" (release {app['release']})" if app.get("release") is not None else ""
            self.out(f"rolled back {app.get('label') or label} to {app.get('version')}{release}")
        return 0
