"""Settings: bootstrapped at first launch, then the database is the source of truth."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.settings.defaults import DEFAULTS_FILE, load_defaults
from tests.support.orchestrator import Orchestrator

pytestmark = pytest.mark.e2e


def _settings(db: Path) -> dict[str, tuple[object, object]]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute('SELECT key, value, "default" FROM settings').fetchall()
    return {key: (json.loads(value), json.loads(default)) for key, value, default in rows}


def _operator_sets(db: Path, key: str, value: object) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE settings SET value = ? WHERE key = ?", (json.dumps(value), key))


def test_first_launch_stores_the_defaults_and_later_launches_keep_db_values(
    orch: Orchestrator, tmp_path: Path
) -> None:
    shipped = load_defaults()
    orch.start()
    stored = _settings(orch.locations.database)
    assert {k: v for k, (v, _d) in stored.items()} == shipped
    assert isinstance(stored["sentinel.interval"][0], float)
    orch.stop()

    # The operator changes two values; the database now wins over the file.
    _operator_sets(orch.locations.database, "programs.start_retries", 7)
    _operator_sets(orch.locations.database, "supervisor.log_backups", 2)
    orch.start()
    conf = orch.locations.supervisor_conf.read_text()
    assert "startretries = 7" in conf
    assert "logfile_backups = 2" in conf
    orch.stop()

    # A newer release: a new key, a new default for an untouched key and for
    # a key the operator changed.
    newer = DEFAULTS_FILE.read_text()
    newer = newer.replace("log_backups = 5\n\n[programs]", "log_backups = 9\n\n[programs]")
    newer = newer.replace("start_retries = 3", "start_retries = 4")
    newer = newer.replace("backoff_max = 300.0", "backoff_max = 200.0")
    newer += "\n[future]\nflag = true\n"
    newer_file = tmp_path / "newer.toml"
    newer_file.write_text(newer)
    result = orch.start(env={"NUA_DEFAULTS_FILE": str(newer_file)})
    assert "1 new default(s) stored" in result.stdout
    after = _settings(orch.locations.database)
    assert after["future.flag"] == (True, True)
    assert after["sentinel.backoff_max"] == (200.0, 200.0)  # untouched: follows
    assert after["programs.start_retries"] == (7, 4)  # changed: kept
    assert after["supervisor.log_backups"] == (2, 9)  # changed: kept
    assert "startretries = 7" in orch.locations.supervisor_conf.read_text()


def test_environment_overrides_one_run_without_touching_the_database(
    orch: Orchestrator,
) -> None:
    orch.start(env={"NUA_PROGRAMS_START_RETRIES": "6"})
    assert "startretries = 6" in orch.locations.supervisor_conf.read_text()
    assert _settings(orch.locations.database)["programs.start_retries"] == (3, 3)
    orch.run("restart")
    assert "startretries = 3" in orch.locations.supervisor_conf.read_text()


def test_an_unknown_nua_variable_is_reported_not_silently_ignored(orch: Orchestrator) -> None:
    result = orch.start(env={"NUA_SENTINEL_INTERVALL": "1"})
    assert "NUA_SENTINEL_INTERVALL matches no setting" in result.stderr
