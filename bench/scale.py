"""Benchmark of cost per item as the data grows (issue 18): periodic and operator queries at several sizes.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--companies 1000] [--keep]

For each size a database ``<--prefix>_<size>`` is seeded (``livedash devtools seed``: a year of
``--companies`` companies' sessions in every pipeline state; an existing seeded one is reused) and each probe
below runs against it, calling the project's own functions. Probes that write (sweeps, claims, batch planning,
the batch check, a stage chunk) run in one outer transaction that is rolled back after them, so every probe
sees the seeded state and a kept database can be measured again.

Each probe's time is the median of ``--repeat`` runs, divided by the items it handled (sessions sent, rows
claimed, requests planned, batches polled, list entries, companies in ``status``, jobs in the scheduler
overview). The figure is the ratio of the per-item cost at the largest size to that at the smallest: the goal
is at most 1.5 everywhere. What each probe calls:

- import sweep / session sweep: ``sweep_imports`` / ``sweep_sessions`` (the due queries and retries;
  nothing is sent to a broker);
- claims: ``claim`` of a chunk of ``IMPORT_DERIVATION`` rows and ``claim_analysable`` of a chunk of sessions;
- batch planning: ``plan_batches`` (the whole backlog); batch check: ``check_batches`` against a client that
  says every open batch is still in progress (its polling loop, status updates and gauges);
- session-processing chunk (Batch mode): ``enqueue_for_batch`` of a chunk of sessions waiting for AI;
- health (database source) and ``schedulers list``: ``scheduler_overviews``; the other health sources read
  HTTP endpoints whose answers do not depend on the data;
- ``status --json``: ``company_import_status`` + ``pipeline_status``; ``imports errors``:
  ``recent_row_errors``; ``sessions failed``: ``failed_sessions``; ``batches list``: ``newest_batches``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import openai
from common import SERVER_URL
from sqlalchemy import Connection, Engine, create_engine, func, make_url, select, text
from sqlalchemy.orm import Session

from pipeline.cli.batches import newest_batches
from pipeline.db import migrate
from pipeline.db.claims import IMPORT_DERIVATION, claim
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import AIProcessingRequest, SessionImport, SessionProcessingStatus
from pipeline.devtools.seed import SeedPlan, default_now, seed_database
from pipeline.scheduling.overview import scheduler_overviews
from pipeline.settings import Settings, load_settings
from pipeline.stages.analysis_claims import claim_analysable
from pipeline.stages.batch_check import check_batches
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_submit import plan_batches
from pipeline.stages.csv_reports import company_import_status, recent_row_errors
from pipeline.stages.import_sweep import sweep_imports
from pipeline.stages.pipeline_reports import failed_sessions, pipeline_status
from pipeline.stages.session_sweep import sweep_sessions

#: Items of one stage chunk, as the stages' default chunk sizes.
CHUNK = 50
GOAL = 1.5
_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Probe:
    name: str
    unit: str
    #: Runs once against a connection inside a transaction that is rolled back; returns the items handled.
    run: Callable[[Connection, Settings], int]


def _as_engine(connection: Connection) -> Engine:
    """The stages take an Engine only to open sessions on it; a Connection in a transaction serves the same,
    and every session then joins that transaction (its commits are not propagated), which the probe rolls
    back."""
    return cast(Engine, connection)


def _sent(connection: Connection, settings: Settings, sweep: Callable[..., Any]) -> int:
    sent: list[uuid.UUID] = []
    sweep(_as_engine(connection), settings, sent.extend)
    return max(len(sent), 1)


def _plan(connection: Connection, settings: Settings) -> int:
    batches = plan_batches(_as_engine(connection), settings)
    planned = connection.execute(
        select(func.count()).where(AIProcessingRequest.batch_id.in_(batches))
    ).scalar_one()
    return max(int(planned), 1)


class _StillRunning:
    """An OpenAI client whose every batch is still in progress: the check's loop without any ingestion."""

    def __init__(self) -> None:
        remote = SimpleNamespace(
            status="in_progress", output_file_id=None, error_file_id=None, completed_at=None,
            failed_at=None, expired_at=None, cancelled_at=None,
        )  # fmt: skip
        self.batches = SimpleNamespace(retrieve=lambda _id: remote, cancel=lambda _id: remote)


def _check(connection: Connection, settings: Settings) -> int:
    result = check_batches(_as_engine(connection), settings, cast(openai.OpenAI, _StillRunning()))
    return max(result.polled, 1)


def _claim_imports(connection: Connection, _settings: Settings) -> int:
    with Session(connection) as db:
        due = list(
            db.scalars(
                select(SessionImport.id)
                .where(SessionImport.derive_status == ProcessingStatus.PENDING)
                .limit(CHUNK)
            )
        )
        claimed = claim(db, IMPORT_DERIVATION, limit=CHUNK, lease=_LEASE, owner="bench",
                        where=[SessionImport.id.in_(due)])  # fmt: skip
    return max(len(claimed), 1)


def _waiting_for_ai(db: Session) -> list[uuid.UUID]:
    return list(
        db.scalars(
            select(SessionProcessingStatus.session_id)
            .where(
                SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
                SessionProcessingStatus.status == ProcessingStatus.PENDING,
                SessionProcessingStatus.attempts == 0,
            )
            .limit(CHUNK)
        )
    )


def _claim_analysis(connection: Connection, settings: Settings) -> int:
    with Session(connection) as db:
        claimed = claim_analysable(db, settings, _waiting_for_ai(db), now=default_now(), lease=_LEASE)
    return max(len(claimed), 1)


def _enqueue(connection: Connection, settings: Settings) -> int:
    with Session(connection) as db:
        waiting = _waiting_for_ai(db)
    return max(enqueue_for_batch(_as_engine(connection), settings, waiting), 1)


def _status(connection: Connection, _settings: Settings) -> int:
    with Session(connection) as db:
        companies = company_import_status(db)
        pipeline_status(db)
    return len(companies)


def _listed(function: Callable[[Session], list[Any]]) -> Callable[[Connection, Settings], int]:
    def run(connection: Connection, _settings: Settings) -> int:
        with Session(connection) as db:
            return max(len(function(db)), 1)

    return run


PROBES = (
    Probe("import sweep (due query, retries)", "import sent",
          lambda c, s: _sent(c, s, sweep_imports)),
    Probe("session sweep (due query)", "session sent", lambda c, s: _sent(c, s, sweep_sessions)),
    Probe("claim: import derivation chunk", "import", _claim_imports),
    Probe("claim: analysis chunk", "session", _claim_analysis),
    Probe("batch planning (plan_batches)", "request planned", _plan),
    Probe("batch check (poll loop + gauges)", "open batch", _check),
    Probe("session-processing chunk, Batch mode", "session", _enqueue),
    Probe("health database source / schedulers list", "job",
          lambda c, s: len(scheduler_overviews(_as_engine(c), s))),
    Probe("status --json", "company", _status),
    Probe("imports errors (50)", "entry", _listed(lambda db: recent_row_errors(db, limit=50))),
    Probe("sessions failed (100)", "entry", _listed(lambda db: failed_sessions(db, limit=100))),
    Probe("batches list (50)", "entry", _listed(lambda db: newest_batches(db, limit=50))),
)  # fmt: skip


@contextmanager
def seeded(prefix: str, size: int, companies: int, keep: bool) -> Iterator[Engine]:
    """The database of one size, seeded unless it already is; dropped after unless ``keep``."""
    name = f"{prefix}_{size}"
    admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(
        make_url(SERVER_URL).set(database=name), execution_options={"preserve_rowcount": True}
    )
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            have = connection.execute(text("SELECT count(*) FROM company")).scalar_one()
        if have:
            # A kept database may have been seeded before the newest migration: fresh planner statistics.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("ANALYZE"))
        if not have:
            started = time.perf_counter()
            seed_database(engine, SeedPlan(companies=companies, sessions=size, now=default_now()))
            elapsed = time.perf_counter() - started
            print(f"seeded {size:,} sessions of {companies:,} companies in {elapsed:.1f} s")
        yield engine
    finally:
        engine.dispose()
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(engine: Engine, settings: Settings, repeat: int) -> dict[str, tuple[float, int]]:
    """Per probe: median seconds per item and the items of the last run."""
    figures: dict[str, tuple[float, int]] = {}
    for probe in PROBES:
        times, items = [], 0
        for _ in range(repeat):
            with engine.connect() as connection:
                transaction = connection.begin()
                started = time.perf_counter()
                items = probe.run(connection, settings)
                times.append(time.perf_counter() - started)
                transaction.rollback()
        figures[probe.name] = (statistics.median(times) / items, items)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Seeded sessions, comma separated.")
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="Runs per probe; the median counts.")
    parser.add_argument("--prefix", default="livedash_scale", help="Names of the seeded databases.")
    parser.add_argument("--keep", action="store_true", help="Keep the seeded databases for the next run.")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[int, dict[str, tuple[float, int]]] = {}
    for size in sizes:
        with seeded(args.prefix, size, args.companies, args.keep) as engine:
            settings = load_settings(database_url=engine.url.render_as_string(hide_password=False),
                                     secret_key="bench-secret", broker="memory")  # fmt: skip
            results[size] = measure(engine, settings, args.repeat)
        print(f"measured {size:,} sessions")
    smallest, largest = sizes[0], sizes[-1]
    header = "".join(f"{f'{size:,}':>16}" for size in sizes)
    print(f"\n{'probe (ms per item; items)':<48}{header}{'ratio':>8}  goal <= {GOAL}")
    for probe in PROBES:
        cells = "".join(
            f"{results[size][probe.name][0] * 1000:>10.3f} ({results[size][probe.name][1]:>5})"
            for size in sizes
        )
        ratio = results[largest][probe.name][0] / results[smallest][probe.name][0]
        verdict = "met" if ratio <= GOAL else "NOT MET"
        print(f"{probe.name + ' / ' + probe.unit:<48}{cells}{ratio:>8.2f}  {verdict}")


if __name__ == "__main__":
    main()
