"""What the benchmarks share: scratch databases, real worker pools, and process memory readings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from dramatiq import Message
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from pipeline.broker import build_broker
from pipeline.companies import add_company
from pipeline.db.engine import normalize_database_url
from pipeline.db.secrets import PasswordBox
from pipeline.devtools.manifest import CompanyManifest
from pipeline.settings import load_settings

__all__ = [
    "CACHE",
    "RABBITMQ_URL",
    "add_served_company",
    "emulator_process",
    "enqueue",
    "peak_rss_mb",
    "scratch_database",
    "wait_for_count",
    "worker_children",
    "worker_pool",
]

SERVER_URL = normalize_database_url(
    os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
)
RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
CACHE = Path(__file__).parent / "out"


@contextmanager
def scratch_database() -> Iterator[str]:
    """An empty database on the benchmark server for the duration of the block."""
    name = f"livedash_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def worker_children(pid: int) -> list[int]:
    result = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in result.stdout.split()]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def emulator_process(**knobs: float) -> Iterator[str]:
    """The OpenAI emulator in a process of its own (``livedash devtools openai``), with ``knobs`` set; its
    base URL. OpenAI is another machine: serving its files must not take the measured process's CPU and GIL.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "devtools", "openai", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.post(f"{root}/_emulator/knobs", json=knobs, timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"the OpenAI emulator did not start on {root}")
        yield f"{root}/v1"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@contextmanager
def worker_pool(
    database_url: str, queues: list[str], processes: int, threads: int, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``dramatiq pipeline.actors`` pool, stopped with SIGTERM at the end of the block."""
    prometheus = tempfile.mkdtemp(prefix="bench-prometheus-")
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "SECRET_KEY": "bench",
        "CSV_ALLOW_PRIVATE_NETWORKS": "true",
        "SCHEDULER_ENABLED": "false",
        "PROMETHEUS_MULTIPROC_DIR": prometheus,
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "pipeline.actors",
            "--queues",
            *queues,
            "-p",
            str(processes),
            "-t",
            str(threads),
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(3)
        yield worker
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=120)


def enqueue(queue: str, actor: str, args_list: list[tuple[object, ...]]) -> None:
    broker = build_broker(load_settings(rabbitmq_url=RABBITMQ_URL))
    broker.declare_queue(queue)
    for args in args_list:
        broker.enqueue(Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={}))
    broker.close()


def purge(*queues: str) -> None:
    """Empty benchmark queues (and their delay and dead-letter queues) that may exist."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    for queue in queues:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel = connection.channel()
            try:
                channel.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker:
                continue
    connection.close()


def wait_for_count(
    engine: Engine,
    sql: str,
    expected: int,
    worker: subprocess.Popen[bytes],
    interval: float = 0.1,
    timeout: float = 900,
) -> None:
    """Poll ``sql`` (a count) until it reaches ``expected``; stop if the worker pool died or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            if connection.execute(text(sql)).scalar_one() >= expected:
                return
        if worker.poll() is not None:
            raise SystemExit(f"the worker pool exited with code {worker.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {timeout:.0f} s waiting for {expected} from: {sql}")
        time.sleep(interval)


def add_served_company(engine: Engine, server_url: str, company: CompanyManifest) -> uuid.UUID:
    """Register a demo data set's company, its CSV on ``server_url``, with its credentials."""
    with sessionmaker(engine).begin() as db:
        return add_company(
            db,
            name=company.name,
            csv_url=f"{server_url}/{company.slug}/sessions.csv",
            username=company.username,
            password=company.password,
            password_box=PasswordBox("bench"),
            timezone=company.timezone,
            # The demo source serves plain http.
            allow_http=True,
        ).id
