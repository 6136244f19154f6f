"""End-to-end benchmark (issue 18): CSV to analysed through the Batch path, real worker pools, real broker.

    .venv/bin/python bench/end_to_end.py [--sessions 100000] [--companies 100] [--processes 2] [--threads 8]

``--companies`` companies' CSVs and transcripts (``--sessions`` in all, generated once into a temporary
directory) are served over local HTTP by the demo source; the OpenAI emulator (both in this process)
completes batches at once. One real ``dramatiq pipeline.actors`` pool consumes every queue on the real
RabbitMQ (``BENCH_RABBITMQ_URL``) and writes to a scratch PostgreSQL database. The clock starts when one CSV
import tick is sent; while sessions remain unanalysed, the benchmark sends a batch submit tick and a batch
check tick every ``--tick-seconds`` and both sweeps every ``--sweep-seconds`` (what the schedulers do on their
crons). It stops when every
session is analysed.

Printed:

- sessions/s end to end, and per stage over that stage's own window (first to last item it finished):
  CSV import, import processing (derive, fetch transcript, store messages), queueing for a batch, and the
  batch (plan, upload, complete, ingest);
- messages through the broker per session (every message the pool processed, from Dramatiq's Prometheus
  counter ``dramatiq_messages_total``, retries included);
- CPU-seconds per 1,000 sessions (``/proc/<pid>/stat``): the worker processes, the PostgreSQL backends of the
  benchmark's database, the RabbitMQ node, and this process (demo source and emulator). The machine's
  PostgreSQL and RabbitMQ are shared: the node's CPU includes whatever else used it meanwhile, and
  PostgreSQL's background processes (WAL writer, checkpointer, autovacuum) are not counted;
- next to it, the sum of the per-session stage floors measured in the same run: the COPY of the CSV rows
  straight into ``session_import`` (``bench/csv_import.py``'s floor) and the COPY of the stored messages into
  a bare table (``bench/import_processing.py``'s reference). The batch ingest's floor needs its own run of
  ``bench/batches.py`` and is not repeated here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import add_served_company, enqueue, purge, scratch_database, worker_children, worker_pool
from csv_import import floor_reference
from import_processing import copy_messages_rate
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, create_engine, text

from pipeline.db import migrate
from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.devtools.source import SourceServer

QUEUES = ["csv-import", "import-processing", "session-processing", "batch-processing"]
TICKS = os.sysconf("SC_CLK_TCK")

#: (stage, SQL giving the first and last time that stage finished an item, and how many)
STAGES = (
    ("CSV import", "SELECT min(started_at), max(finished_at), sum(rows_new) FROM csv_fetch"),
    ("import processing", "SELECT min(created_at), max(created_at), count(*) FROM session"),
    ("queueing for a batch",
     "SELECT min(requested_at), max(requested_at), count(*) FROM ai_processing_request"),
    ("batch (plan, upload, complete, ingest)",
     "SELECT min(created_at), max(processed_at), sum(completed_count) FROM ai_batch_request"),
)  # fmt: skip
ANALYSED = (
    "SELECT count(*) FROM session_processing_status WHERE stage = 'AI_ANALYSIS' AND status = 'COMPLETED'"
)
SETTLED = (
    "SELECT count(*) FROM session_processing_status WHERE stage = 'AI_ANALYSIS' "
    "AND status IN ('COMPLETED', 'FAILED', 'SKIPPED')"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far; 0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def rabbitmq_pids() -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", "beam.smp.*-home /var/lib/rabbitmq"], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def postgres_backends(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )


def messages_processed(directory: str) -> float:
    """Messages the pool processed, from its run's metrics directory under ``directory``
    (``pipeline.pool_metrics``)."""
    registry = CollectorRegistry()
    for run in Path(directory).glob("run-*"):
        MultiProcessCollector(registry, str(run))  # type: ignore[no-untyped-call]
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == "dramatiq_messages"
        for sample in family.samples
        if sample.name == "dramatiq_messages_total"
    )


def wait_until_analysed(
    engine: Engine, sessions: int, worker: subprocess.Popen[bytes], every: float, sweep_every: float
) -> None:
    deadline = time.monotonic() + 3 * 3600
    swept = time.monotonic()
    while True:
        with engine.connect() as connection:
            if connection.execute(text(SETTLED)).scalar_one() >= sessions:
                return
        if worker.poll() is not None:
            raise SystemExit(f"the worker pool exited with code {worker.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit("gave up after 3 hours")
        # What the schedulers send on their crons: the sweeps retry what failed for a while (a transcript
        # that timed out), the batch ticks submit and check.
        if time.monotonic() - swept > sweep_every:
            enqueue("import-processing", "import_processing_sweep", [()])
            enqueue("session-processing", "session_processing_sweep", [()])
            swept = time.monotonic()
        enqueue("batch-processing", "batch_submit_tick", [()])
        enqueue("batch-processing", "batch_check_tick", [()])
        time.sleep(every)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--tick-seconds", type=float, default=5.0, help="Between batch ticks.")
    parser.add_argument(
        "--sweep-seconds", type=float, default=120.0, help="Between sweeps (their default cron)."
    )
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="bench-end-to-end-"))
    purge(*QUEUES)
    with (
        SourceServer(directory) as server,
        OpenAIEmulator() as emulator,
        scratch_database() as url,
    ):
        emulator.knobs = Knobs(validating_seconds=0.0, in_progress_seconds=0.0, finalizing_seconds=0.0)
        manifest = generate_dataset(
            directory, companies=args.companies, sessions=args.sessions // args.companies, seed=18,
            base_url=server.url,
        )  # fmt: skip
        sessions = args.sessions // args.companies * args.companies
        engine = create_engine(url)
        migrate.upgrade(engine)
        for company in manifest.companies:
            add_served_company(engine, server.url, company)
        prometheus = tempfile.mkdtemp(prefix="bench-e2e-prometheus-")
        with worker_pool(
            url, QUEUES, args.processes, args.threads,
            OPENAI_BASE_URL=emulator.url, OPENAI_API_KEY="bench", AI_PROCESSING_MODE="batch",
            BATCH_MIN_REQUESTS="1", BATCH_MAX_REQUESTS="5000",
            PROMETHEUS_MULTIPROC_DIR=prometheus,
        ) as worker:  # fmt: skip
            workers = [worker.pid, *worker_children(worker.pid)]
            node = rabbitmq_pids()
            before = {
                "workers": sum(map(cpu_seconds, workers)),
                "rabbitmq": sum(map(cpu_seconds, node)),
                "harness": cpu_seconds(os.getpid()),
            }
            backends_before = {pid: cpu_seconds(pid) for pid in postgres_backends(engine)}
            started = time.perf_counter()
            enqueue("csv-import", "csv_import_tick", [()])
            wait_until_analysed(engine, sessions, worker, args.tick_seconds, args.sweep_seconds)
            elapsed = time.perf_counter() - started
            backends = postgres_backends(engine)
            used = {
                "workers": sum(map(cpu_seconds, workers)) - before["workers"],
                "PostgreSQL (this database's backends)": sum(
                    cpu_seconds(pid) - backends_before.get(pid, 0.0) for pid in backends
                ),
                "RabbitMQ (the whole node, shared)": sum(map(cpu_seconds, node)) - before["rabbitmq"],
                "this process (demo source, emulator)": cpu_seconds(os.getpid()) - before["harness"],
            }
        with engine.connect() as connection:
            windows = [(name, *connection.execute(text(sql)).one()) for name, sql in STAGES]
            analysed = connection.execute(text(ANALYSED)).scalar_one()
            messages_per_session = connection.execute(
                text("SELECT count(*)::float / greatest((SELECT count(*) FROM session), 1) FROM message")
            ).scalar_one()
        messages = messages_processed(prometheus)
        copy_rate, _ = copy_messages_rate(url)
        csv_floor = floor_reference(url, directory / manifest.companies[0].slug / "sessions.csv")
        engine.dispose()
    purge(*QUEUES)

    print(f"{sessions:,} sessions of {args.companies} companies, pool -p {args.processes} -t {args.threads}")
    print(f"end to end: {analysed:,} analysed in {elapsed:.1f} s = {analysed / elapsed:,.0f} sessions/s")
    for name, first, last, items in windows:
        span = (last - first).total_seconds() if first and last else float("nan")
        print(f"  {name}: {items or 0:,} in {span:.1f} s = {(items or 0) / span:,.0f} /s")
    print(f"broker messages: {messages:,.0f} = {messages / sessions:.3f} per session")
    for what, seconds in used.items():
        print(f"CPU {what}: {seconds:.1f} s = {seconds / sessions * 1000:.2f} s per 1,000 sessions")
    total = sum(seconds for what, seconds in used.items() if not what.startswith("this process"))
    print(
        f"CPU pipeline (workers + PostgreSQL + RabbitMQ): {total / sessions * 1000:.2f} s per 1,000 sessions"
    )
    floor_seconds = 1 / csv_floor + messages_per_session / copy_rate
    print(
        f"sum of the stage floors measured here (CSV rows COPY into session_import {csv_floor:,.0f} rows/s, "
        f"messages COPY {copy_rate:,.0f}/s): {1 / floor_seconds:,.0f} sessions/s; "
        f"end to end at {analysed / elapsed * floor_seconds:.3f} of it"
    )


if __name__ == "__main__":
    main()
