"""A real uvicorn serving the API keeps its memory when a client streams a huge body at the admin path.

On main an unauthenticated 150 MB POST took the process from 112 MB to 573 MB: the body was read and parsed
before the token was checked, and uvicorn has no body limit.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.db import migrate
from pipeline.db.engine import create_db_engine
from pipeline.settings import load_settings

TOKEN = "t" * 48
#: What the client offers to send: the size that took the process past its pod limit on main.
OFFERED = 150 * 1024 * 1024
CHUNK = 64 * 1024
#: The process may grow by this much at most while refusing (kernel buffers and allocator noise).
ALLOWED_GROWTH_BYTES = 40 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """``livedash health`` on a free port of 127.0.0.1: (its pid, its port), shared by the module's tests."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('limit') / 'limit.sqlite3'}"
    engine = create_db_engine(load_settings(database_url=database_url))
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADMIN_API_TOKEN": TOKEN,
        "RABBITMQ_MANAGEMENT_URL": f"http://127.0.0.1:{free_port()}",
        "HEALTH_HOST": "127.0.0.1",
        "HEALTH_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "health"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert process.poll() is None, process.communicate()[0].decode(errors="replace")
        yield process.pid, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def stream(port: int, head: bytes, *, chunked: bool) -> tuple[bytes, int]:
    """Send ``head`` then up to ``OFFERED`` bytes of body until the server answers; (answer, bytes sent)."""
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        piece = b" " * CHUNK
        frame = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        while sent < OFFERED:
            readable, writable, _ = select.select([connection], [connection], [], 10)
            if readable:
                break
            if writable:
                try:
                    connection.sendall(frame)
                except OSError:
                    break
                sent += CHUNK
        try:
            while chunk := connection.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                    break
        except OSError:
            pass
    return answer, sent


def request_head(*, token: str | None, length: int | None) -> bytes:
    lines = ["POST /api/admin/schedulers HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("token", "declared", "status"),
    [
        (None, True, b"401"),
        (None, False, b"401"),
        (TOKEN, True, b"413"),
        (TOKEN, False, b"413"),
    ],
    ids=["anonymous declared", "anonymous chunked", "authenticated declared", "authenticated chunked"],
)
def test_a_huge_body_is_refused_and_the_memory_stays_bounded(
    server: tuple[int, int], token: str | None, declared: bool, status: bytes
) -> None:
    pid, port = server
    before = resident_bytes(pid)

    # When a client streams 150 MB at the admin path, declared or chunked, with or without the token
    head = request_head(token=token, length=OFFERED if declared else None)
    answer, sent = stream(port, head, chunked=not declared)

    # Then it is refused (401 before the token, 413 after it) long before the body ends
    assert answer.split(b" ", 2)[1:2] == [status], answer[:300]
    assert sent < OFFERED // 2
    # And the process did not take the body into memory
    growth = resident_bytes(pid) - before
    print(f"sent {sent} bytes before the answer; resident memory grew by {growth} bytes")
    assert growth < ALLOWED_GROWTH_BYTES
