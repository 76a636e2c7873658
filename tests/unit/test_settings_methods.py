"""orchestrator/rpc/methods/settings.py: `settings.*` on a real SQLite file, in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from orchestrator.db.engine import make_engine
from orchestrator.db.schema import upgrade
from orchestrator.rpc.context import WorkerContext
from orchestrator.rpc.errors import InvalidArgument, NotFound
from orchestrator.rpc.methods.settings import SettingsMethods
from orchestrator.rpc.registry import Registry
from orchestrator.rpc.writer import Writer
from orchestrator.settings.defaults import load_defaults
from orchestrator.settings.store import bootstrap

DEFAULTS = load_defaults()
# One key of each type, as shipped.
BOOL, INT, FLOAT, STR = (
    "programs.cron",
    "programs.start_retries",
    "sentinel.interval",
    "supervisor.log_level",
)


@pytest.fixture
def context(short_home: Path) -> Iterator[WorkerContext]:
    engine = make_engine(f"sqlite:///{short_home / 'nua.db'}")
    with engine.connect() as connection:
        upgrade(connection)
        bootstrap(connection, DEFAULTS)
    writer = Writer(engine)
    writer.start()
    yield WorkerContext(
        engine=engine,
        writer=writer,
        database="test",
        endpoint="ipc://test",
        schema_revision=None,
    )
    writer.stop()
    engine.dispose()


@pytest.fixture
def settings(context: WorkerContext) -> SettingsMethods:
    return SettingsMethods(context)


def _stored(context: WorkerContext, key: str) -> str:
    """The raw JSON text in the database, to see the stored type."""
    with context.engine.connect() as connection:
        return connection.execute(
            text("SELECT value FROM settings WHERE key = :key"), {"key": key}
        ).scalar_one()


def test_the_shipped_defaults_are_as_expected() -> None:
    # The tests below rely on these types; a changed defaults file should say so here.
    assert isinstance(DEFAULTS[BOOL], bool)
    assert type(DEFAULTS[INT]) is int
    assert isinstance(DEFAULTS[FLOAT], float)
    assert isinstance(DEFAULTS[STR], str)


def test_list_has_every_default_sorted_unchanged_and_typed(settings: SettingsMethods) -> None:
    listed = settings.list()
    assert [s["key"] for s in listed] == sorted(DEFAULTS)
    by_key = {s["key"]: s for s in listed}
    assert by_key[FLOAT] == {
        "key": FLOAT,
        "value": DEFAULTS[FLOAT],
        "default": DEFAULTS[FLOAT],
        "type": "float",
        "changed": False,
    }
    assert {by_key[k]["type"] for k in (BOOL, INT, FLOAT, STR)} == {"bool", "int", "float", "str"}
    assert not any(s["changed"] for s in listed)
    json.dumps(listed, allow_nan=False)


def test_get_one_setting(settings: SettingsMethods) -> None:
    assert settings.get(STR) == {
        "key": STR,
        "value": "info",
        "default": "info",
        "type": "str",
        "changed": False,
    }


@pytest.mark.parametrize("method", ["get", "reset"])
def test_unknown_key_is_not_found(settings: SettingsMethods, method: str) -> None:
    with pytest.raises(NotFound) as caught:
        getattr(settings, method)("no.such_key")
    assert caught.value.data == {"name": "not_found", "field": "key"}
    assert "no.such_key" in caught.value.message


def test_set_unknown_key_is_not_found(settings: SettingsMethods) -> None:
    with pytest.raises(NotFound) as caught:
        settings.set("no.such_key", 1)
    assert caught.value.data["field"] == "key"


def test_a_key_that_is_not_a_string_is_an_invalid_argument(settings: SettingsMethods) -> None:
    with pytest.raises(InvalidArgument) as caught:
        settings.get(["sentinel.interval"])  # type: ignore[arg-type]
    assert caught.value.data["field"] == "key"


@pytest.mark.parametrize(
    ("key", "value"),
    [(BOOL, True), (INT, 7), (INT, 0), (FLOAT, 2.5), (STR, "debug"), (STR, "warn")],
)
def test_set_stores_a_value_of_the_right_type(
    settings: SettingsMethods, context: WorkerContext, key: str, value: Any
) -> None:
    answer = settings.set(key, value)
    assert answer["value"] == value
    assert type(answer["value"]) is type(value)
    assert answer["changed"] is True
    assert answer["default"] == DEFAULTS[key]
    assert settings.get(key) == answer
    assert _stored(context, key) == json.dumps(value)


def test_a_float_setting_takes_an_integer_and_stores_a_float(
    settings: SettingsMethods, context: WorkerContext
) -> None:
    answer = settings.set(FLOAT, 3)
    assert answer["value"] == 3.0
    assert type(answer["value"]) is float
    assert _stored(context, FLOAT) == "3.0"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (BOOL, 1, "a boolean"),
        (BOOL, "true", "a boolean"),
        (BOOL, None, "a boolean"),
        (INT, True, "an integer"),
        (INT, 1.5, "an integer"),
        (INT, 2.0, "an integer"),
        (INT, "3", "an integer"),
        (FLOAT, False, "a number"),
        (FLOAT, "2.5", "a number"),
        (FLOAT, float("nan"), "finite number"),
        (FLOAT, float("inf"), "finite number"),
        (STR, 5, "a string"),
        (STR, ["debug"], "a string"),
        (STR, {"level": "debug"}, "a string"),
    ],
)
def test_set_refuses_a_value_of_another_type(
    settings: SettingsMethods, context: WorkerContext, key: str, value: Any, expected: str
) -> None:
    before = _stored(context, key)
    with pytest.raises(InvalidArgument) as caught:
        settings.set(key, value)
    assert caught.value.data == {"name": "invalid_argument", "field": "value"}
    assert key in caught.value.message
    assert expected in caught.value.message
    assert _stored(context, key) == before


def test_setting_the_default_value_again_is_not_a_change(settings: SettingsMethods) -> None:
    settings.set(INT, 9)
    assert settings.set(INT, DEFAULTS[INT])["changed"] is False


def test_reset_goes_back_to_the_default(settings: SettingsMethods, context: WorkerContext) -> None:
    settings.set(FLOAT, 1)
    answer = settings.reset(FLOAT)
    assert answer["value"] == DEFAULTS[FLOAT]
    assert answer["changed"] is False
    assert _stored(context, FLOAT) == json.dumps(DEFAULTS[FLOAT])
    # Resetting an unchanged setting is fine too.
    assert settings.reset(FLOAT) == answer


def test_only_the_changed_setting_is_marked_changed(settings: SettingsMethods) -> None:
    settings.set(BOOL, not DEFAULTS[BOOL])
    changed = [s["key"] for s in settings.list() if s["changed"]]
    assert changed == [BOOL]


def test_the_namespace_registers_reads_and_changes(context: WorkerContext) -> None:
    registry = Registry()
    registry.add_namespace(SettingsMethods(context))
    changes = {name: m.changes for name, m in registry.methods.items()}
    assert changes == {
        "settings.get": False,
        "settings.list": False,
        "settings.reset": True,
        "settings.set": True,
    }
    for method in registry.methods.values():
        assert method.doc, f"{method.name} has no docstring"


# -- constraints: what a value may be beyond its type ----------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        # The audit's lock-outs: each one stopped the worker at its next start.
        ("rpc.threads", 0, "from 1 to 1024"),
        ("rpc.max_message_bytes", -1, "from 16384 to 1073741824"),
        ("rpc.max_batch", 0, "from 1 to 100000"),
        ("supervisor.log_level", "bogus", "one of critical, error, warn, info, debug"),
        ("supervisor.log_level", "", "one of critical"),
        ("rpc.idempotency_hours", 0.0, "more than 0 and at most 8784"),
        ("sentinel.interval", 1e9, "from 0.1 to 86400"),
        ("supervisor.log_max_bytes", "ten megs", "a size like 10MB"),
        ("supervisor.executable", "bin/supervisord", "an absolute path"),
        ("supervisor.executable", "-c", "a command name"),
        ("apps.user", "-o", "a user name like nua-app"),
        ("apps.port_max", 70000, "from 1 to 65535"),
    ],
)
def test_set_refuses_a_value_outside_what_the_setting_allows(
    settings: SettingsMethods, context: WorkerContext, key: str, value: Any, allowed: str
) -> None:
    before = _stored(context, key)
    with pytest.raises(InvalidArgument) as caught:
        settings.set(key, value)
    error = caught.value.to_error()
    assert error["code"] == -32003
    assert error["data"]["name"] == "invalid_argument"
    assert error["data"]["field"] == "value"
    assert error["data"]["key"] == key
    assert allowed in error["data"]["allowed"]
    # The message names the key, the value and what is allowed.
    assert error["message"].startswith(f"{key} cannot be {json.dumps(value)}: it must be ")
    assert allowed in error["message"]
    assert "nothing was changed" in error["message"]
    assert _stored(context, key) == before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rpc.threads", 1),
        ("rpc.threads", 1024),
        ("rpc.max_message_bytes", 16384),
        ("supervisor.log_level", "blather"),
        ("supervisor.log_max_bytes", "0"),
        ("supervisor.executable", "/usr/local/bin/supervisord"),
        ("supervisor.executable", "supervisord"),
        ("apps.user", ""),
        ("rpc.idempotency_hours", 0.5),
    ],
)
def test_set_takes_the_values_at_the_edges_of_what_is_allowed(
    settings: SettingsMethods, context: WorkerContext, key: str, value: Any
) -> None:
    assert settings.set(key, value)["value"] == value
    assert _stored(context, key) == json.dumps(value)


def test_the_two_ends_of_a_range_stay_in_order(
    settings: SettingsMethods, context: WorkerContext
) -> None:
    low, high = DEFAULTS["apps.port_min"], DEFAULTS["apps.port_max"]
    with pytest.raises(InvalidArgument) as caught:
        settings.set("apps.port_min", high + 1)
    assert f"at most apps.port_max ({high})" in caught.value.message
    assert "change the other end of the range first" in caught.value.message
    with pytest.raises(InvalidArgument) as caught:
        settings.set("apps.port_max", low - 1)
    assert f"at least apps.port_min ({low})" in caught.value.message
    assert _stored(context, "apps.port_min") == json.dumps(low)
    assert _stored(context, "apps.port_max") == json.dumps(high)
    # Moving the whole range up: the upper end first, then the lower one.
    settings.set("apps.port_max", 30999)
    settings.set("apps.port_min", 30000)
    assert settings.get("apps.port_min")["value"] == 30000
    # An equal pair is a range of one port.
    settings.set("apps.port_max", 30000)
