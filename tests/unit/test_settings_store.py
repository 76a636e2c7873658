"""orchestrator/settings/store.py: bootstrap the settings table and merge newer defaults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from orchestrator.db.engine import make_engine
from orchestrator.db.schema import upgrade
from orchestrator.settings.defaults import SettingValue
from orchestrator.settings.store import MergePlan, bootstrap, plan_merge, read_all

# -- plan_merge ------------------------------------------------------------------


def test_new_key_is_added() -> None:
    plan = plan_merge({"a.x": (1, 1)}, {"a.x": 1, "a.new": "v"})
    assert plan == MergePlan(added={"a.new": "v"})
    assert plan.changes_anything


def test_nothing_changes_when_defaults_are_the_same() -> None:
    plan = plan_merge({"a.x": (5, 1), "a.y": (2, 2)}, {"a.x": 1, "a.y": 2})
    assert plan == MergePlan()
    assert not plan.changes_anything


def test_untouched_key_follows_a_changed_default() -> None:
    plan = plan_merge({"a.x": (1, 1)}, {"a.x": 2})
    assert plan.followed == {"a.x": 2}
    assert plan.kept == []
    assert plan.changes_anything


def test_operator_changed_key_is_kept() -> None:
    plan = plan_merge({"a.x": (10, 1)}, {"a.x": 2})
    assert plan.kept == ["a.x"]
    assert plan.followed == {}
    assert plan.changes_anything


@pytest.mark.parametrize(
    ("old", "new"),
    [(1, 1.0), (1, True), (0, False), ("1", 1), (1.0, 1)],
)
def test_type_change_counts_as_a_change(old: SettingValue, new: SettingValue) -> None:
    plan = plan_merge({"a.x": (old, old)}, {"a.x": new})
    assert plan.followed == {"a.x": new}
    assert type(plan.followed["a.x"]) is type(new)


def test_operator_value_equal_to_but_typed_unlike_the_default_is_a_change() -> None:
    # 1.0 == 1 in Python, but the operator stored a float where the default was an int.
    plan = plan_merge({"a.x": (1.0, 1)}, {"a.x": 2})
    assert plan.kept == ["a.x"]


def test_obsolete_keys_are_listed_sorted() -> None:
    plan = plan_merge({"z.old": (1, 1), "a.old": (2, 2), "a.x": (3, 3)}, {"a.x": 3})
    assert plan.obsolete == ["a.old", "z.old"]
    assert not plan.changes_anything


# -- bootstrap against a real SQLite file ----------------------------------------------


@pytest.fixture
def engine(short_home: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{short_home / 'nua.db'}")
    with eng.connect() as connection:
        upgrade(connection)
    yield eng
    eng.dispose()


def _raw_rows(engine: Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text('SELECT key, value, "default" FROM settings'))
        return {key: (value, default) for key, value, default in rows}


def _bootstrap(engine: Engine, defaults: dict[str, SettingValue]) -> MergePlan:
    with engine.connect() as connection:
        return bootstrap(connection, defaults)


def _read(engine: Engine) -> dict[str, object]:
    with engine.connect() as connection:
        return read_all(connection)


V1: dict[str, SettingValue] = {
    "sentinel.interval": 5.0,
    "sentinel.failures": 3,
    "programs.cron": False,
    "supervisor.log_level": "info",
    "rpc.client_timeout": 5.0,
}


def test_first_bootstrap_stores_every_default(engine: Engine) -> None:
    plan = _bootstrap(engine, V1)
    assert plan.added == V1
    assert _read(engine) == V1
    raw = _raw_rows(engine)
    assert raw["sentinel.interval"] == ("5.0", "5.0")
    assert raw["programs.cron"] == ("false", "false")
    assert raw["supervisor.log_level"] == ('"info"', '"info"')


def test_bootstrap_again_with_the_same_defaults_changes_nothing(engine: Engine) -> None:
    _bootstrap(engine, V1)
    before = _raw_rows(engine)
    plan = _bootstrap(engine, V1)
    assert not plan.changes_anything
    assert _raw_rows(engine) == before


def test_newer_defaults_add_keys_keep_operator_values_and_follow_the_rest(
    engine: Engine,
) -> None:
    _bootstrap(engine, V1)
    # The operator changes one setting (nua settings set ...).
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE settings SET value = :value WHERE key = :key"),
            {"value": json.dumps(7), "key": "sentinel.failures"},
        )
    v2 = {**V1, "sentinel.failures": 4, "sentinel.interval": 10.0, "programs.web": False}
    plan = _bootstrap(engine, v2)
    assert plan.added == {"programs.web": False}
    assert plan.followed == {"sentinel.interval": 10.0}
    assert plan.kept == ["sentinel.failures"]
    values = _read(engine)
    assert values == {
        **V1,
        "sentinel.failures": 7,
        "sentinel.interval": 10.0,
        "programs.web": False,
    }
    # The kept key's recorded default moves, so the next merge compares with 4.
    assert _raw_rows(engine)["sentinel.failures"] == ("7", "4")


def test_obsolete_keys_stay_stored(engine: Engine) -> None:
    _bootstrap(engine, V1)
    smaller = {k: v for k, v in V1.items() if k != "programs.cron"}
    plan = _bootstrap(engine, smaller)
    assert plan.obsolete == ["programs.cron"]
    assert _read(engine)["programs.cron"] is False


def test_floats_stay_floats_after_a_round_trip(engine: Engine) -> None:
    _bootstrap(engine, {"a.whole": 30.0, "a.int": 30, "a.flag": True})
    values = _read(engine)
    assert values == {"a.whole": 30.0, "a.int": 30, "a.flag": True}
    assert type(values["a.whole"]) is float
    assert type(values["a.int"]) is int
    assert type(values["a.flag"]) is bool
    assert _raw_rows(engine)["a.whole"] == ("30.0", "30.0")
    # A stored float does not look "changed" against the same float default.
    assert not _bootstrap(engine, {"a.whole": 30.0, "a.int": 30, "a.flag": True}).changes_anything


@pytest.mark.parametrize(("old", "new"), [(1, 1.0), (0, False)])
def test_type_change_of_a_default_is_followed_in_the_database(
    engine: Engine, old: SettingValue, new: SettingValue
) -> None:
    _bootstrap(engine, {"a.x": old})
    plan = _bootstrap(engine, {"a.x": new})
    assert plan.followed == {"a.x": new}
    assert _raw_rows(engine)["a.x"] == (json.dumps(new), json.dumps(new))
    value = _read(engine)["a.x"]
    assert type(value) is type(new)
    # Once followed, the next merge has nothing left to do.
    assert not _bootstrap(engine, {"a.x": new}).changes_anything
