"""Settings: bootstrapped at first launch, then the database is the source of truth."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.settings.defaults import DEFAULTS_FILE, load_defaults
from tests.support.badinput import assert_refused, db_fingerprint
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


# -- constraints: no value can lock the operator out --------------------------------------


def _rows(db: Path) -> list[tuple[str, str, str, str]]:
    """Every stored setting with its change time: a refused value changes none of it."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(
            'SELECT key, value, "default", updated_at FROM settings ORDER BY key'
        ).fetchall()


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("rpc.threads", "0", "it must be from 1 to 1024"),
        (
            "supervisor.log_level",
            "bogus",
            "it must be one of critical, error, warn, info, debug, trace, blather",
        ),
    ],
)
def test_nua_settings_set_refuses_a_value_that_would_stop_the_next_start(
    orch: Orchestrator, key: str, value: str, allowed: str
) -> None:
    orch.start()
    before = _rows(orch.locations.database)

    refused = orch.run("settings", "set", key, value, cli="nua")

    assert refused.returncode == 2, refused
    assert refused.stdout == ""
    shown = value if value.isdigit() else f'"{value}"'
    assert refused.stderr == (
        f"error: {key} cannot be {shown}: {allowed}; nothing was changed (value)\n"
    )
    assert _rows(orch.locations.database) == before
    # The next start is unharmed: the worker comes back and answers.
    restarted = orch.run("restart")
    assert restarted.returncode == 0, f"{restarted.stdout}{restarted.stderr}"
    assert orch.ping(timeout=10) == "pong"
    assert _rows(orch.locations.database) == before


def test_a_bad_override_is_refused_before_anything_starts(orch: Orchestrator) -> None:
    orch.start()
    orch.stop()
    before = db_fingerprint(orch.locations.database)

    result = orch.run("start", env={"NUA_RPC_THREADS": "0"})

    assert_refused(
        orch, result, "NUA_RPC_THREADS='0': it must be from 1 to 1024 (setting rpc.threads)"
    )
    assert db_fingerprint(orch.locations.database) == before


def test_a_stored_value_from_before_the_checks_does_not_lock_the_operator_out(
    orch: Orchestrator,
) -> None:
    orch.start()
    orch.stop()
    _operator_sets(orch.locations.database, "rpc.threads", 0)  # as an older release could

    result = orch.start()

    assert "warning: the stored rpc.threads = 0 is not allowed" in result.stderr
    assert orch.ping() == "pong"
    fixed = orch.run("settings", "set", "rpc.threads", "4", cli="nua")
    assert fixed.returncode == 0, fixed.stderr
    shipped = load_defaults()["rpc.threads"]
    assert _settings(orch.locations.database)["rpc.threads"] == (4, shipped)
