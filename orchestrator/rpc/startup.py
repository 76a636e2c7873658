"""Everything the worker needs before serving: database, settings, writer, methods."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from orchestrator.apps.service import AppsService
from orchestrator.db.engine import make_engine
from orchestrator.db.schema import current_revision
from orchestrator.db.url import database_url, display_url
from orchestrator.host.locations import Locations
from orchestrator.rpc.context import WorkerContext
from orchestrator.rpc.idempotency import Answers
from orchestrator.rpc.protocol import Processor
from orchestrator.rpc.registry import build_registry, namespace_classes
from orchestrator.rpc.writer import Writer
from orchestrator.settings import store
from orchestrator.settings.defaults import load_defaults
from orchestrator.settings.effective import effective_settings

log = logging.getLogger("nua.rpc")
# Idempotency answers older than rpc.idempotency_hours are deleted this often.
PRUNE_MINUTES = 10


@dataclass
class OpenWorker:
    engine: Engine
    writer: Writer
    context: WorkerContext
    processor: Processor
    settings: dict[str, Any]
    pool: ThreadPoolExecutor

    def close(self) -> None:
        """Commit what the writer holds, then close every connection (checkpoints the WAL)."""
        self.pool.shutdown(wait=True)
        self.writer.stop()
        self.engine.dispose()
        if self.writer.commits:
            log.info("writer: %d change(s) in %d commit(s)", self.writer.jobs, self.writer.commits)


def open_worker(where: Locations) -> OpenWorker:
    url = database_url(where)
    engine = make_engine(url)
    with engine.connect() as conn:
        revision = current_revision(conn)
        stored = store.read_all(conn)
    effective = effective_settings(stored, load_defaults())
    for line in effective.refused_warnings():
        log.warning("%s", line.removeprefix("warning: "))
    settings = effective.values
    # Old answers go at start, then at most every PRUNE_MINUTES while running.
    answers = Answers(
        hours=float(settings["rpc.idempotency_hours"]), prune_every=PRUNE_MINUTES * 60
    )
    answers.prune_if_due(engine)
    writer = Writer(engine, max_batch=int(settings["rpc.writer_batch"]), answers=answers)
    writer.start()
    # Calls that are not quick run here (the serve loop answers the quick ones).
    pool = ThreadPoolExecutor(
        max_workers=int(settings["rpc.threads"]), thread_name_prefix="nua-rpc"
    )
    context = WorkerContext(
        engine=engine,
        writer=writer,
        database=display_url(url),
        endpoint=where.rpc_endpoint,
        schema_revision=revision,
        settings=settings,
        locations=where,
        threads=pool,
    )
    context.apps = AppsService(context, where, settings)
    context.apps.recover()
    context.registry = build_registry(context, namespace_classes())
    processor = Processor(context.registry, max_batch=int(settings["rpc.max_batch"]))
    return OpenWorker(engine, writer, context, processor, settings, pool)
