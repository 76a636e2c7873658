"""orchestrator/settings/constraints.py: ranges, choices, shapes and orders of settings."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.settings import constraints
from orchestrator.settings.constraints import Choice, Range, Shape
from orchestrator.settings.defaults import DEFAULTS_FILE, load_defaults

SHIPPED = load_defaults(DEFAULTS_FILE)


def test_every_shipped_default_is_allowed() -> None:
    for key, value in SHIPPED.items():
        assert constraints.problem(key, value) is None, key
    assert constraints.broken_orders(SHIPPED) == []


def test_every_constraint_names_a_shipped_setting() -> None:
    # A constraint left behind by a renamed key would silently check nothing.
    assert set(constraints.CONSTRAINTS) <= set(SHIPPED)
    for order in constraints.ORDERS:
        assert {order.low, order.high} <= set(SHIPPED)


def test_every_number_and_string_setting_has_a_constraint() -> None:
    # Booleans cannot be out of range; every other shipped key says what it allows.
    unchecked = [
        key
        for key, value in SHIPPED.items()
        if not isinstance(value, bool) and key not in constraints.CONSTRAINTS
    ]
    assert unchecked == []


# -- minimum and maximum ------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 5, 10, 1.0, 9.5])
def test_a_range_includes_both_ends(value: float) -> None:
    assert Range(1, 10).problem(value) is None


@pytest.mark.parametrize("value", [0, 11, -1, 0.999, 10.001])
def test_a_range_refuses_what_is_outside(value: float) -> None:
    assert Range(1, 10).problem(value) == "it must be from 1 to 10"


def test_above_excludes_the_lower_end() -> None:
    positive = Range(0, 60, above=True)
    assert positive.problem(0) == "it must be more than 0 and at most 60"
    assert positive.problem(0.0) is not None
    assert positive.problem(1e-6) is None
    assert positive.problem(60) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_range_refuses_what_is_not_finite(value: float) -> None:
    # NaN compares false with both bounds: without its own check it would pass.
    assert Range(1, 10).problem(value) == "it must be a finite number from 1 to 10"


@pytest.mark.parametrize("value", ["5", None, True, [5]])
def test_a_range_refuses_what_is_not_a_number(value: Any) -> None:
    assert Range(1, 10).problem(value) == "it must be a number from 1 to 10"


@pytest.mark.parametrize(
    ("constraint", "words"),
    [
        (Range(0), "at least 0"),
        (Range(None, 9), "at most 9"),
        (Range(0, None, above=True), "more than 0"),
        (Range(0.1, 2.5), "from 0.1 to 2.5"),
    ],
)
def test_a_range_describes_itself(constraint: Range, words: str) -> None:
    assert constraint.describe() == words


# -- allowed choices ----------------------------------------------------------------------


def test_a_choice_takes_only_its_words() -> None:
    levels = constraints.CONSTRAINTS["supervisor.log_level"]
    assert isinstance(levels, Choice)
    for word in ("critical", "error", "warn", "info", "debug", "trace", "blather"):
        assert levels.problem(word) is None
    for wrong in ("bogus", "", "INFO ", "warning", 3):
        assert levels.problem(wrong) == (
            "it must be one of critical, error, warn, info, debug, trace, blather"
        )


# -- shapes: non-empty, paths, names, sizes -----------------------------------------------


@pytest.mark.parametrize("value", ["", "/usr/bin/supervisord", "/opt/my tools/sd", "supervisord"])
def test_the_supervisord_executable_may_be(value: str) -> None:
    assert constraints.problem("supervisor.executable", value) is None


@pytest.mark.parametrize(
    "value", ["bin/supervisord", "./supervisord", "-c", "/usr/bin/x\nloglevel", " supervisord", 5]
)
def test_the_supervisord_executable_may_not_be(value: Any) -> None:
    reason = constraints.problem("supervisor.executable", value)
    assert reason is not None and "an absolute path" in reason


@pytest.mark.parametrize("value", ["10MB", "10mb", "500KB", "1GB", "0", "1048576"])
def test_a_log_size_is_what_supervisord_reads(value: str) -> None:
    assert constraints.problem("programs.log_max_bytes", value) is None


@pytest.mark.parametrize("value", ["", "10 MB", "-1", "10TB", "1.5MB", "MB"])
def test_a_log_size_supervisord_would_refuse_is_refused(value: str) -> None:
    assert constraints.problem("supervisor.log_max_bytes", value) is not None


def test_the_apps_user_is_never_root() -> None:
    problem = constraints.problem("apps.user", "root")
    assert problem is not None and "never root" in problem
    assert constraints.problem("apps.user", "rootless") is None


@pytest.mark.parametrize("value", ["", "nua-app", "_apps", "web2"])
def test_the_apps_user_is_empty_or_a_user_name(value: str) -> None:
    assert constraints.problem("apps.user", value) is None


@pytest.mark.parametrize("value", ["-o", "Root", "a b", "x" * 33, "nua\n", "../x"])
def test_the_apps_user_refuses_what_useradd_would_take_for_something_else(value: str) -> None:
    assert constraints.problem("apps.user", value) is not None


def test_a_shape_refuses_a_partial_match() -> None:
    assert Shape(r"[a-z]+", "letters").problem("abc1") == "it must be letters"


# -- orders between two settings ----------------------------------------------------------


def test_order_problem_names_the_other_end() -> None:
    values = {"apps.port_min": 20000, "apps.port_max": 20999}
    assert constraints.order_problem("apps.port_min", 20999, values) is None
    assert (
        constraints.order_problem("apps.port_min", 21000, values)
        == "it must be at most apps.port_max (20999)"
    )
    assert (
        constraints.order_problem("apps.port_max", 19999, values)
        == "it must be at least apps.port_min (20000)"
    )
    assert constraints.order_problem("rpc.threads", 0, values) is None


def test_broken_orders_ignores_keys_it_was_not_given() -> None:
    assert constraints.broken_orders({"apps.port_min": 30000}) == []
    broken = constraints.broken_orders(
        {"sentinel.backoff_initial": 10.0, "sentinel.backoff_max": 5.0}
    )
    assert [(o.low, o.high) for o in broken] == [
        ("sentinel.backoff_initial", "sentinel.backoff_max")
    ]


def test_unknown_keys_are_checked_for_nothing() -> None:
    assert constraints.problem("future.flag", -1) is None
    assert constraints.allowed("future.flag") is None
    assert constraints.allowed("rpc.threads") == "from 1 to 1024"
