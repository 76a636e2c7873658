"""The history checker of issue 4 (fault test 12), run longer than CI runs it.

Clients write through ledger.append, user.add and user.delete, recording every
invocation and answer; a nemesis kills the worker or supervisord with SIGKILL
at random moments (and runs `nua-orchestrator start` after the latter); from
a fresh start, the checker proves that no acknowledged write is lost and none
applied twice. Prints the same summary as tests/e2e/test_fault_history.py
(about a minute in CI); exits 1 on any anomaly or leaked process.

Not in run_all.sh (5 minutes by default). Run:
    .venv/bin/python bench/bench_history.py [--seconds 300] [--clients 5] [--seed N]
        [--history FILE]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.history import PLUGINS, RunConfig, run_history
from tests.support.orchestrator import Orchestrator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="of faults (300)")
    parser.add_argument("--clients", type=int, default=5, help="client threads (5)")
    parser.add_argument("--seed", type=int, default=None, help="replays a nemesis schedule")
    parser.add_argument("--history", type=Path, default=None, help="write the events here")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    config = RunConfig(seconds=args.seconds, clients=args.clients, seed=seed)

    home = Path(tempfile.mkdtemp(prefix="nuab"))
    orch = Orchestrator(home, extra_env={"PYTHONPATH": str(PLUGINS)})
    print(f"\n## History under kill -9 of the worker and supervisord (seed {seed})", flush=True)
    try:
        orch.start()
        result = run_history(orch, config, log=lambda line: print(line, flush=True))
    finally:
        leaked = orch.kill_everything()
        shutil.rmtree(home, ignore_errors=True)
    print(result.summary())
    if args.history is not None:
        result.history.dump(args.history)
        print(f"history: {args.history}")
    for anomaly in result.report.anomalies[:50]:
        print(f"  {anomaly}")
    if leaked:
        print(f"processes leaked from {home}: {leaked}")
    if result.db_check_code != 0:
        print(result.db_check)
    return 0 if result.report.ok and not leaked and result.db_check_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
