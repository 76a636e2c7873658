"""Issue 4, fault test 12: a Jepsen-style history under kill -9 of the worker and supervisord.

Clients write (ledger.append, user.add, user.delete) and record every
invocation and answer; a nemesis kills the worker or supervisord at random
moments; afterwards, from a fresh start, the checker proves that no
acknowledged write is lost and none applied twice. NUA_HISTORY_SECONDS sets
the length of the faulty part (60 by default), NUA_HISTORY_SEED replays a
nemesis schedule (the clients' timing is the machine's). Below about 20 s
the run may be too short for its floor of kills. A longer run:
bench/bench_history.py.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.support.history import PLUGINS, AnomalyKind, RunConfig, run_history
from tests.support.orchestrator import Orchestrator

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("NUA_HISTORY_SECONDS", "60"))
SEED = int(os.environ.get("NUA_HISTORY_SEED") or random.SystemRandom().randrange(2**32))
CLIENTS = 5
# So that the test cannot pass without doing anything.
MIN_KILLS = max(2, int(SECONDS // 15))
MIN_ACKNOWLEDGED = int(5 * SECONDS)


@pytest.mark.timeout(int(SECONDS) + 240)
def test_no_acknowledged_write_is_lost_or_applied_twice_under_kill_9(
    short_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\nhistory run: seed {SEED} (NUA_HISTORY_SEED={SEED} replays the nemesis)")
    # The default number of rpc threads: calls really run concurrently.
    orch = Orchestrator(short_home, extra_env={"PYTHONPATH": str(PLUGINS)})
    try:
        orch.start()
        result = run_history(orch, RunConfig(seconds=SECONDS, clients=CLIENTS, seed=SEED))
    finally:
        leaked = orch.kill_everything()
    with capsys.disabled():
        print(result.summary())
    assert not leaked, f"processes leaked from {short_home}: {leaked}"

    report = result.report
    if not report.ok:
        result.history.dump(tmp_path / "history.jsonl")
    assert report.ok, (
        f"{len(report.anomalies)} anomalies (history in {tmp_path / 'history.jsonl'}):\n"
        + "\n".join(str(a) for a in report.anomalies[:30])
    )
    assert report.count(AnomalyKind.LOST) == report.count(AnomalyKind.DUPLICATE) == 0
    assert result.db_check_code == 0, result.db_check
    kills = result.kills
    assert kills["worker"] >= 1 and kills["supervisord"] >= 1, kills
    assert kills.total() >= MIN_KILLS, f"only {kills.total()} kills, wanted {MIN_KILLS}"
    assert report.acknowledged >= MIN_ACKNOWLEDGED, (
        f"only {report.acknowledged} ops acknowledged, wanted {MIN_ACKNOWLEDGED}"
    )
    # Some change must have been retried with its key after a lost answer.
    assert report.retried >= 1, "no op had an unknown outcome: the faults missed every write"
