"""Whatever bytes arrive, the worker answers valid JSON-RPC and never dies."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.orchestrator import Orchestrator
from tests.support.raw_rpc import RawClient

pytestmark = pytest.mark.e2e

CASES = int(os.environ.get("NUA_FUZZ_CASES", "3000"))

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ids = st.none() | st.integers() | st.text(max_size=8) | json_values
method_names = st.sampled_from(
    ["system.ping", "system.version", "system.describe", "echo.back", "subtract", "sum",
     "get_data", "nope", "system.__class__", "_x", "", "a.b.c", "settings.get", "settings.list"]
) | st.text(max_size=12)  # fmt: skip
requests = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", 2]) | json_values,
        "method": method_names | json_values,
        "params": st.lists(json_values, max_size=3)
        | st.dictionaries(st.text(max_size=10), json_values, max_size=3)
        | json_values,
        "id": ids,
    },
)
messages = (
    requests.map(json.dumps)
    | st.lists(requests | json_values, max_size=5).map(json.dumps)
    | json_values.map(json.dumps)
    | st.binary(max_size=200)
    | st.text(max_size=200)
).map(lambda m: m if isinstance(m, bytes) else m.encode("utf-8", "surrogatepass"))


@pytest.fixture(scope="module")
def worker_pid(served: Orchestrator) -> int:
    """The worker's pid before the first case."""
    return served.program("nua:rpc").pid


@pytest.fixture(scope="module")
def fuzz_client(served: Orchestrator, worker_pid: int) -> Iterator[RawClient]:
    client = RawClient(served.locations.rpc_endpoint)
    yield client
    client.close()


def _valid_response(obj: Any) -> bool:
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0" or "id" not in obj:
        return False
    if ("result" in obj) == ("error" in obj):
        return False
    if "error" in obj:
        err = obj["error"]
        return (
            isinstance(err, dict)
            and isinstance(err.get("code"), int)
            and isinstance(err.get("message"), str)
        )
    return True


def _readable_id(message: bytes) -> tuple[bool, Any]:
    """(True, id) when the message is one request carrying a valid id."""
    try:
        obj = json.loads(message)
    except (ValueError, RecursionError):
        return False, None
    if not isinstance(obj, dict) or "id" not in obj:
        return False, None
    rid = obj["id"]
    if rid is None or (isinstance(rid, str | int | float) and not isinstance(rid, bool)):
        return True, rid
    return False, None


@settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(message=messages)
def test_any_bytes_get_a_valid_answer_and_the_worker_survives(
    served: Orchestrator, fuzz_client: RawClient, message: bytes
) -> None:
    reply = fuzz_client.exchange(message)
    if reply is not None:
        answers = reply if isinstance(reply, list) else [reply]
        assert answers, "an empty array is never an answer"
        assert all(_valid_response(a) for a in answers), reply
        assert "Traceback" not in json.dumps(reply)
    has_id, rid = _readable_id(message)
    if has_id:
        assert reply is not None, f"a request with id {rid!r} got no answer"
        assert reply["id"] == rid or reply["id"] is None


def test_the_worker_pid_never_changed(served: Orchestrator, worker_pid: int) -> None:
    # Runs after the property in this module: one worker served every case.
    rpc = served.program("nua:rpc")
    assert (rpc.state, rpc.pid) == ("RUNNING", worker_pid)
