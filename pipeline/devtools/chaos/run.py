"""A chaos run: the whole pipeline on services of its own, faults at seeded random points, then the checks.

PostgreSQL (:class:`PostgresServer`), RabbitMQ (:class:`RabbitCluster`, one node or three, quorum queues),
the demo data source and the OpenAI emulator are the run's own; worker pools, ``livedash scheduler``
replicas and a ticker (every job's tick each ``tick_seconds``) run against them. Once work is under way,
the faults of the plan happen one after another at seeded random gaps; after each, the run measures the
time from the fault's end to the pipeline moving again (its progress figure growing). Then it waits for
quiet (every good session settled, or ``quiet_timeout``), stops everything and checks the invariants
(:mod:`pipeline.devtools.chaos.invariants`).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dramatiq import Message
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from pipeline.companies import add_company
from pipeline.db import migrate
from pipeline.db.secrets import PasswordBox
from pipeline.dead_letters import dead_letter_queue, list_dead_letters
from pipeline.devtools.chaos.invariants import Findings, check_invariants
from pipeline.devtools.chaos.processes import ProcessFleet, Ticker, pool_fleet, scheduler_fleet
from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.manifest import CompanyManifest
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.devtools.poison import POISON_ACTOR, POISON_QUEUE
from pipeline.devtools.postgres_server import PostgresServer
from pipeline.devtools.rabbitmq_nodes import RabbitCluster
from pipeline.devtools.source import SourceServer
from pipeline.errors import PermanentError
from pipeline.publishing import Publisher
from pipeline.queues import ALL_QUEUES, SESSION_PROCESSING
from pipeline.scheduling.jobs import ANALYZE_SESSIONS
from pipeline.settings import Settings, load_settings

__all__ = [
    "FAULT_KINDS",
    "ChaosPlan",
    "ChaosReport",
    "ChaosRunError",
    "FaultRecord",
    "choose_faults",
    "register_company",
    "run_chaos",
]

FaultKind = Literal[
    "worker-process", "pool", "scheduler", "rabbitmq", "postgresql", "emulator-500", "emulator-timeout",
    "transcript-hang",
]  # fmt: skip
#: Every kind of fault, each happening at least once in a run (in a seeded order).
FAULT_KINDS: tuple[FaultKind, ...] = (
    "worker-process", "pool", "scheduler", "rabbitmq", "postgresql", "emulator-500", "emulator-timeout",
    "transcript-hang",
)  # fmt: skip

#: The key of the run's own throw-away database: strong, since the processes refuse weak secrets.
SECRET = secrets.token_urlsafe(48)
#: Batches that finish half a second after they are created.
FAST_BATCHES = Knobs(validating_seconds=0, in_progress_seconds=0.5, finalizing_seconds=0)
#: Progress: the rows only the stages' work writes (imports, sessions, messages, AI requests, completed
#: stage rows, batches). Never the ticks' own rows (scheduler runs, CSV fetches of unchanged files), which
#: grow every ``tick_seconds`` while no stage gets anywhere; nor a failed call's request row, which a call
#: that failed during an OpenAI outage writes after the outage's end.
PROGRESS = text(
    "SELECT (SELECT count(*) FROM session_import) + (SELECT count(*) FROM session)"
    " + (SELECT count(*) FROM message)"
    " + (SELECT count(*) FROM ai_processing_request WHERE processing_status <> 'PROCESSING_FAILED')"
    " + (SELECT count(*) FROM session_processing_status WHERE status = 'COMPLETED')"
    " + (SELECT count(*) FROM ai_batch_request)"
)
SETTLED = text(
    "SELECT count(*) FROM session_processing_status WHERE stage = 'AI_ANALYSIS' "
    "AND status IN ('COMPLETED', 'FAILED', 'SKIPPED')"
)


class ChaosRunError(PermanentError):
    """The run itself could not go on (not a finding about the pipeline): it stops with the reason."""


@dataclass(frozen=True)
class ChaosPlan:
    """What a run does; ``seed`` fixes the data set, the order of the faults and when they happen."""

    seed: int = 1
    companies: int = 2
    sessions_per_company: int = 30
    mode: Literal["batch", "sync"] = "batch"
    rabbit_nodes: int = 1
    #: Faults in all: every kind once, the rest SIGKILLs of worker processes and whole pools.
    faults: int = len(FAULT_KINDS)
    kinds: tuple[FaultKind, ...] = FAULT_KINDS
    gap_seconds: tuple[float, float] = (1.0, 4.0)
    broker_outage_seconds: float = 5.0
    database_outage_seconds: float = 5.0
    emulator_outage_seconds: float = 5.0
    transcript_hang_seconds: float = 5.0
    pools: int = 2
    processes: int = 1
    threads: int = 4
    schedulers: int = 2
    delivery_limit: int = 4
    tick_seconds: float = 2.0
    #: A new company (and its sessions) every so many seconds, so that work keeps arriving during the faults.
    company_every_seconds: float = 8.0
    #: Sync mode: how long the emulator takes to answer, so that calls are in flight when pools die.
    sync_latency_seconds: float = 0.3
    #: The time limit of every stage's work (``ACTOR_TIME_LIMIT_MS``, ``IMPORT_PROCESSING_TIMEOUT``,
    #: ``CSV_IMPORT_TIMEOUT``) and the grace a claim's lease adds to it (``CLAIM_LEASE_GRACE_MS``): what a
    #: killed worker held comes free after their sum. The grace must outlast what a worker still does past
    #: its time limit (calls in flight, writing their answers), or two workers pay for one answer.
    time_limit_seconds: float = 20.0
    lease_grace_seconds: float = 120.0
    #: How long work whose message a killed worker was handing on waits before a sweep sends it
    #: (``SWEEP_GRACE_MS``).
    sweep_grace_seconds: float = 120.0
    recovery_timeout: float = 120.0
    quiet_timeout: float = 300.0
    poison: bool = True
    #: Let the poison message kill its pools and be dead-lettered before the first company arrives. A sync
    #: run needs it: the harness counts the calls in flight at the kills it makes itself, but not at the
    #: poison's, which come at moments it does not know; any answer those kills cost would be re-billed
    #: uncounted.
    poison_before_work: bool = False
    #: The processes' LOG_LEVEL (INFO to follow every message through a run that does not settle).
    log_level: str = "WARNING"
    #: More modules for the pools to load beside the actors (a test's module that breaks an invariant on
    #: purpose, to show that the checks catch it); importable from the working directory.
    extra_modules: tuple[str, ...] = ()


@dataclass
class FaultRecord:
    kind: str
    seconds: float
    #: From the fault's end to the pipeline moving again (its stages' work, :data:`PROGRESS`, growing); None:
    #: it did not move within the recovery timeout, or had nothing left to do (``idle``).
    recovered_after: float | None
    note: str = ""
    #: No work waited when the fault ended (every session of the companies registered so far settled): no
    #: recovery to measure.
    idle: bool = False
    #: The stages' work grew while the fault lasted (a cluster carrying on through a lost node, say).
    moved_during: bool = False

    def line(self) -> str:
        if self.idle:
            recovery = "- (nothing left to do)"
        else:
            recovery = f"{self.recovered_after:.1f} s" if self.recovered_after is not None else "never"
        during = ", moved during it" if self.moved_during and self.seconds else ""
        return (
            f"{self.kind:<17} lasted {self.seconds:5.1f} s{during}, recovered after {recovery} {self.note}"
        ).rstrip()


@dataclass
class ChaosReport:
    plan: ChaosPlan
    faults: list[FaultRecord]
    findings: Findings
    elapsed: float
    pool_restarts: int
    scheduler_restarts: int
    tick_failures: int
    log_dir: Path

    @property
    def ok(self) -> bool:
        return not self.findings.violations

    def lines(self) -> list[str]:
        plan = self.plan
        return [
            f"chaos run: seed {plan.seed}, {plan.mode} mode, {plan.companies * plan.sessions_per_company} "
            f"sessions, {plan.rabbit_nodes} RabbitMQ node(s), quorum queues, {plan.pools} pools; time limit "
            f"{plan.time_limit_seconds:g} s, lease grace {plan.lease_grace_seconds:g} s, sweep grace "
            f"{plan.sweep_grace_seconds:g} s",
            f"total {self.elapsed:.1f} s; pool restarts {self.pool_restarts}, scheduler restarts "
            f"{self.scheduler_restarts}, ticks not sent {self.tick_failures}",
            *(record.line() for record in self.faults),
            *self.findings.summary(),
        ]


@dataclass
class _Services:
    postgres: PostgresServer
    rabbit: RabbitCluster
    source: SourceServer
    emulator: OpenAIEmulator
    engine: Engine
    settings: Settings
    pools: ProcessFleet
    schedulers: ProcessFleet
    ticker: Ticker
    feeder: _Feeder
    rng: random.Random
    plan: ChaosPlan
    interrupted_calls: int = 0
    faults: list[FaultRecord] = field(default_factory=list)


def choose_faults(plan: ChaosPlan) -> list[FaultKind]:
    """Every kind of the plan once, then SIGKILLs of worker processes and pools, in a seeded order."""
    rng = random.Random(plan.seed)  # noqa: S311  a seeded fault schedule, not cryptography
    extra: list[FaultKind] = [
        rng.choice(("worker-process", "pool")) for _ in range(plan.faults - len(plan.kinds))
    ]
    chosen = [*plan.kinds, *extra]
    rng.shuffle(chosen)
    return chosen


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def _environment(plan: ChaosPlan, database_url: str, rabbitmq_url: str, emulator_url: str) -> dict[str, str]:
    """The settings of every process of the run: short backoffs and timeouts, so faults are got over fast."""
    every_minute = "* * * * *"
    return {
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": rabbitmq_url,
        "RABBITMQ_QUEUE_TYPE": "quorum",
        "RABBITMQ_DELIVERY_LIMIT": str(plan.delivery_limit),
        "SECRET_KEY": SECRET,
        "CSV_ALLOW_PRIVATE_NETWORKS": "true",
        "OPENAI_BASE_URL": emulator_url,
        "OPENAI_API_KEY": "chaos",
        "AI_PROCESSING_MODE": plan.mode,
        "OPENAI_TIMEOUT_MS": "3000",
        "OPENAI_MAX_ATTEMPTS": "2",
        "OPENAI_MAX_RETRY_WAIT_MS": "1000",
        "BATCH_MIN_REQUESTS": "1",
        "BATCH_MAX_WAIT": "1",
        "BATCH_MAX_ATTEMPTS": "20",
        "ACTOR_MAX_RETRIES": "20",
        # A claim's lease is the time limit plus its grace: what a killed worker held is taken over then.
        "ACTOR_TIME_LIMIT_MS": _ms(plan.time_limit_seconds),
        "CLAIM_LEASE_GRACE_MS": _ms(plan.lease_grace_seconds),
        "SWEEP_GRACE_MS": _ms(plan.sweep_grace_seconds),
        "ACTOR_MIN_BACKOFF_MS": "200",
        "ACTOR_MAX_BACKOFF_MS": "3000",
        "IMPORT_PROCESSING_BACKOFF_MS": "500",
        "IMPORT_PROCESSING_MAX_BACKOFF_MS": "3000",
        "IMPORT_PROCESSING_MAX_ATTEMPTS": "100",
        "TRANSCRIPT_FETCH_TIMEOUT": "2000",
        "CSV_IMPORT_TIMEOUT": _ms(plan.time_limit_seconds),
        "IMPORT_PROCESSING_TIMEOUT": _ms(plan.time_limit_seconds),
        "CSV_IMPORT_INTERVAL": every_minute,
        "IMPORT_PROCESSING_INTERVAL": every_minute,
        "SESSION_PROCESSING_INTERVAL": every_minute,
        "BATCH_PROCESSING_INTERVAL": every_minute,
        "BATCH_PROCESSING_CHECK_INTERVAL": every_minute,
        "SCHEDULER_OVERLAP_TIMEOUT": "30",
        "METRICS_PORT": "0",
        "dramatiq_prom_port": "0",
        "LOG_LEVEL": plan.log_level,
    }


def _progress(engine: Engine) -> int | None:
    try:
        with engine.connect() as connection:
            return int(connection.execute(PROGRESS).scalar_one())
    except Exception:
        return None


def _settled(engine: Engine) -> int:
    try:
        with engine.connect() as connection:
            return int(connection.execute(SETTLED).scalar_one())
    except Exception:
        return -1


def _idle(services: _Services) -> bool:
    """Whether no work waits: every session of the companies registered so far settled (their CSVs imported
    included). A fault that ends then has nothing to recover from; the next company's arrival is not the
    pipeline recovering."""
    return _settled(services.engine) >= services.feeder.registered_sessions


def _recovery(services: _Services) -> float | None:
    """Seconds until the progress figure grows past its value at the fault's end (None: not in time)."""
    ended = time.monotonic()
    baseline = _progress(services.engine)
    deadline = ended + services.plan.recovery_timeout
    while time.monotonic() < deadline:
        now = _progress(services.engine)
        if now is not None and (baseline is None or now > baseline):
            return time.monotonic() - ended
        time.sleep(0.2)
    return None


def _apply(services: _Services, kind: FaultKind) -> tuple[float, str]:
    """Do one fault; how long it lasted and what it cost."""
    plan, rng = services.plan, services.rng
    started = time.monotonic()
    note = ""
    if kind in ("worker-process", "pool"):
        before = services.emulator.chat_in_flight()
        index = rng.randrange(plan.pools)
        if kind == "pool" or not services.pools.kill_one_child(index, rng):
            services.pools.kill(index)
        # Counted after the kill too: a call started between the first count and the SIGKILL (finding the
        # process to kill reads /proc, under the fleet's lock) was missed by it. The emulator goes on
        # answering (and billing) a call whose client died: each call the kill interrupted is in flight now.
        services.interrupted_calls += max(before, services.emulator.chat_in_flight())
        note = f"(pool {index})"
    elif kind == "scheduler":
        services.schedulers.kill(rng.randrange(plan.schedulers))
    elif kind == "rabbitmq":
        note = _restart_rabbitmq(services)
    elif kind == "postgresql":
        services.interrupted_calls += services.emulator.chat_in_flight()
        services.postgres.stop()
        time.sleep(plan.database_outage_seconds)
        services.postgres.start()
    elif kind in ("emulator-500", "emulator-timeout"):
        services.emulator.knobs.outage = "server_error" if kind == "emulator-500" else "timeout"
        time.sleep(plan.emulator_outage_seconds)
        services.emulator.knobs.outage = None
    else:
        services.source.faults.add("/", "delay:30")
        time.sleep(plan.transcript_hang_seconds)
        services.source.faults.clear()
    return time.monotonic() - started, note


def _restart_rabbitmq(services: _Services) -> str:
    """Kill the node leading the session-processing queue (the only node, on one), restart it later."""
    cluster = services.rabbit
    node = cluster.nodes[0]
    if len(cluster.nodes) > 1:
        with contextlib.suppress(Exception):
            node = cluster.node_named(cluster.leaders().get(POISON_QUEUE, node.name))
    services.interrupted_calls += services.emulator.chat_in_flight()
    node.kill()
    time.sleep(services.plan.broker_outage_seconds)
    node.start()
    return f"({node.name})"


def _wait_for_the_poison(services: _Services, log: Callable[[str], None]) -> None:
    """Until the poison message is in its dead-letter queue (its delivery limit spent), or quiet_timeout."""
    started = time.monotonic()
    dead_letters = dead_letter_queue(POISON_QUEUE)
    while time.monotonic() - started < services.plan.quiet_timeout:
        with contextlib.suppress(Exception):
            depths = services.rabbit.running_node().ctl("list_queues", "-q", "name", "messages")
            rows = [line.split() for line in depths.splitlines()]
            if any(row[:1] == [dead_letters] and row[1:] != ["0"] for row in rows):
                log(f"poison dead-lettered after {time.monotonic() - started:.1f} s, "
                    f"{services.pools.restarts} pool restarts; work starts")  # fmt: skip
                return
        time.sleep(1)
    log("the poison message was not dead-lettered in time; work starts anyway")


def _send_poison(settings: Settings) -> None:
    publisher = Publisher(settings)
    try:
        publisher(Message(queue_name=POISON_QUEUE, actor_name=POISON_ACTOR, args=(), kwargs={}, options={}))
    finally:
        publisher.close()


#: Analysed sessions whose analysis is delivered again once the run is quiet.
REDELIVERED_SESSIONS = 20


def _redeliver_done_work(services: _Services) -> None:
    """Deliver again analysis messages whose work is done, as RabbitMQ does when an acknowledgement was lost
    (a connection dropped after the work committed): the database claim must make them change nothing."""
    with services.engine.connect() as connection:
        done = connection.execute(
            text(
                "SELECT session_id FROM session_processing_status WHERE stage = 'AI_ANALYSIS' "
                "AND status = 'COMPLETED' ORDER BY session_id LIMIT :limit"
            ),
            {"limit": REDELIVERED_SESSIONS},
        ).scalars()
        ids = [str(session_id) for session_id in done]
    publisher = Publisher(services.settings)
    try:
        for session_id in ids:
            publisher(Message(queue_name=SESSION_PROCESSING, actor_name=ANALYZE_SESSIONS.name,
                              args=([session_id],), kwargs={}, options={}))  # fmt: skip
    finally:
        publisher.close()
    time.sleep(5 * services.plan.tick_seconds)


#: What is left when a run does not come to rest: the work not settled, grouped by where it waits.
UNSETTLED = {
    "imports (derive_status, attempts, lease passed)": text(
        "SELECT derive_status, derive_attempts, derive_lease_expires_at < now(), count(*) FROM session_import"
        " WHERE derive_status NOT IN ('COMPLETED', 'FAILED', 'SKIPPED') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ),
    "session stages (stage, status, attempts, leased, lease passed, next attempt due)": text(
        "SELECT stage, status, attempts, leased_by IS NOT NULL, lease_expires_at < now(),"
        " next_attempt_at <= now(), count(*) FROM session_processing_status"
        " WHERE status NOT IN ('COMPLETED', 'FAILED', 'SKIPPED') GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3"
    ),
    "sessions without an analysis row": text(
        "SELECT count(*) FROM session s WHERE NOT EXISTS (SELECT 1 FROM session_processing_status p"
        " WHERE p.session_id = s.id AND p.stage = 'AI_ANALYSIS')"
    ),
    "requests (processing_status, attempts, in a batch)": text(
        "SELECT processing_status, attempts, batch_id IS NOT NULL, count(*) FROM ai_processing_request"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ),
    "batches (status, lease passed, age s)": text(
        "SELECT status, lease_expires_at < now(), round(extract(epoch FROM now() - created_at)), count(*)"
        " FROM ai_batch_request GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ),
    "csv fetches (outcome)": text("SELECT outcome, count(*) FROM csv_fetch GROUP BY 1 ORDER BY 1"),
    "database now": text("SELECT now()"),
}


def _unsettled_lines(services: _Services) -> list[str]:
    """Where the unsettled work waits, and the depths of the run's own queues, for a run that did not rest."""
    lines = []
    try:
        with services.engine.connect() as connection:
            for title, query in UNSETTLED.items():
                rows = connection.execute(query).all()
                lines += [f"{title}:", *(f"  {tuple(row)}" for row in rows)]
    except Exception as exc:
        lines.append(f"database not readable: {exc!r}")
    try:
        lines += ["queues (name, ready, unacked, consumers):", *(
            f"  {line}" for line in services.rabbit.running_node().ctl(
                "list_queues", "-q", "name", "messages_ready", "messages_unacknowledged", "consumers"
            ).splitlines()
        )]  # fmt: skip
    except Exception as exc:
        lines.append(f"queues not readable: {exc!r}")
    return lines


def _wait_for_quiet(services: _Services, good: int, log: Callable[[str], None]) -> None:
    deadline = time.monotonic() + services.plan.quiet_timeout
    next_dump = time.monotonic() + services.plan.quiet_timeout / 4
    while time.monotonic() < deadline and _settled(services.engine) < good:
        services.feeder.raise_error()
        if time.monotonic() >= next_dump:
            next_dump += services.plan.quiet_timeout / 4
            log(f"settled {_settled(services.engine)} of {good}")
            for line in _unsettled_lines(services):
                log(line)
        time.sleep(0.5)
    if _settled(services.engine) < good:
        log(f"not quiet: settled {_settled(services.engine)} of {good}")
        for line in _unsettled_lines(services):
            log(line)
    # A little longer, so that anything still in flight lands before the checks (and duplicates would show).
    time.sleep(3 * services.plan.tick_seconds)


class _Feeder:
    """Registers the data set's companies one by one, ``every`` seconds apart, so that new work keeps arriving
    while the faults happen. A registration the database could not take (it is down) is tried again; any
    other failure ends the feeder with its ``error``, which the run raises rather than waiting for work that
    can never come."""

    def __init__(self, engine: Engine, base_url: str, companies: list[CompanyManifest], every: float):
        self._engine, self._base_url, self._every = engine, base_url, every
        self._waiting = list(companies)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)
        self.error: Exception | None = None
        #: Sessions in the CSVs of the companies registered so far.
        self.registered_sessions = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while self._waiting and not self._stop.is_set():
            try:
                register_company(self._engine, self._base_url, self._waiting[0])
            except DBAPIError:
                self._stop.wait(0.5)
                continue
            except Exception as exc:
                self.error = exc
                return
            self.registered_sessions += self._waiting.pop(0).sessions
            self._stop.wait(self._every)

    def raise_error(self) -> None:
        """Raise what ended the feeder, if anything did."""
        if self.error is not None:
            raise ChaosRunError(f"the run could not register its companies: {self.error}") from self.error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def register_company(engine: Engine, base_url: str, company: CompanyManifest) -> None:
    """Register one company of the data set, its CSV at ``base_url`` (the run's own source server)."""
    with sessionmaker(engine).begin() as db:
        add_company(
            db, name=company.name, csv_url=f"{base_url}/{company.slug}/sessions.csv",
            username=company.username, password=company.password, password_box=PasswordBox(SECRET),
            timezone=company.timezone,
            # The run's source server serves plain http on 127.0.0.1, credentials and all.
            allow_http=True,
        )  # fmt: skip


@contextlib.contextmanager
def _services(plan: ChaosPlan, directory: Path, log_dir: Path) -> Iterator[tuple[_Services, int]]:
    with (
        PostgresServer() as postgres,
        RabbitCluster(plan.rabbit_nodes) as rabbit,
        SourceServer(directory) as source,
        OpenAIEmulator(
            knobs=Knobs(validating_seconds=0, in_progress_seconds=0.5, finalizing_seconds=0)
        ) as emulator,
    ):
        engine = create_engine(postgres.url, pool_pre_ping=True)
        migrate.upgrade(engine)
        manifest = generate_dataset(
            directory, companies=plan.companies, sessions=plan.sessions_per_company, seed=plan.seed,
            base_url=source.url,
        )  # fmt: skip
        good = sum(company.sessions for company in manifest.companies)
        if plan.mode == "sync":
            emulator.knobs.latency = plan.sync_latency_seconds
        env = {**os.environ, **_environment(plan, postgres.url, rabbit.urls(), emulator.url)}
        settings = load_settings(
            database_url=postgres.url, rabbitmq_url=rabbit.urls(), rabbitmq_queue_type="quorum",
            rabbitmq_delivery_limit=plan.delivery_limit,
        )  # fmt: skip
        services = _Services(
            postgres, rabbit, source, emulator, engine, settings,
            pool_fleet(env, plan.pools, plan.processes, plan.threads, log_dir, plan.extra_modules),
            scheduler_fleet(env, plan.schedulers, log_dir),
            Ticker(engine, settings, plan.tick_seconds),
            _Feeder(engine, source.url, list(manifest.companies), plan.company_every_seconds),
            random.Random(plan.seed), plan,  # noqa: S311  seeded faults
        )  # fmt: skip
        try:
            yield services, good
        finally:
            services.feeder.stop()
            services.ticker.stop()
            services.schedulers.stop()
            services.pools.stop()
            engine.dispose()


def run_chaos(plan: ChaosPlan, *, log: Callable[[str], None] = print) -> ChaosReport:
    """Run ``plan`` on services of its own; the report holds the figures and any broken invariant."""
    directory = Path(tempfile.mkdtemp(prefix="livedash-chaos-"))
    log_dir = directory / "logs"
    log_dir.mkdir()
    started = time.monotonic()
    with _services(plan, directory / "data", log_dir) as (services, good):
        services.pools.start()
        services.schedulers.start()
        if plan.poison:
            _send_poison(services.settings)
        services.ticker.start()
        if plan.poison and plan.poison_before_work:
            _wait_for_the_poison(services, log)
        services.feeder.start()
        log(f"{good} sessions; services up after {time.monotonic() - started:.1f} s; logs in {log_dir}")
        while (_progress(services.engine) or 0) == 0 and time.monotonic() - started < plan.quiet_timeout:
            time.sleep(0.2)
        for kind in choose_faults(plan):
            time.sleep(services.rng.uniform(*plan.gap_seconds))
            before = _progress(services.engine)
            seconds, note = _apply(services, kind)
            after = _progress(services.engine)
            moved = before is not None and after is not None and after > before
            if _idle(services):
                record = FaultRecord(kind, seconds, None, note, idle=True, moved_during=moved)
            else:
                record = FaultRecord(kind, seconds, _recovery(services), note, moved_during=moved)
            services.faults.append(record)
            log(record.line())
        log(f"faults over after {time.monotonic() - started:.1f} s; waiting for quiet")
        _wait_for_quiet(services, good, log)
        log(f"quiet after {time.monotonic() - started:.1f} s; delivering done work again")
        _redeliver_done_work(services)
        services.ticker.stop()
        services.schedulers.stop()
        services.pools.stop()
        log(f"stopped after {time.monotonic() - started:.1f} s; checking")
        findings = check_invariants(
            services.engine,
            good_sessions=good,
            mode=plan.mode,
            ledger=services.emulator.ledger(),
            dead_letters=list_dead_letters(services.settings.rabbitmq_url, list(ALL_QUEUES)),
            interrupted_calls=services.interrupted_calls,
            poison_sent=plan.poison,
        )
        return ChaosReport(
            plan=plan,
            faults=services.faults,
            findings=findings,
            elapsed=time.monotonic() - started,
            pool_restarts=services.pools.restarts,
            scheduler_restarts=services.schedulers.restarts,
            tick_failures=services.ticker.failures,
            log_dir=log_dir,
        )
