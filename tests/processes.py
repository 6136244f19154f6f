"""Starting the pipeline's processes for real (as an operator would) and reading what they serve and log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

__all__ = ["free_port", "livedash", "running", "wait_for_metrics"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def livedash(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *arguments]


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` in its own process group with ``env`` added, its output in ``log``; SIGTERM at the end (the
    group is killed if it does not stop within 60 s)."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for_metrics(url: str, wanted: str, process: subprocess.Popen[bytes], log: Path) -> str:
    """The exposition at ``url`` once it contains ``wanted`` (at most 60 s; fails sooner if the process
    exits), with the process's output in the failure message."""
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline and process.poll() is None:
        try:
            text = httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            text = ""
        if wanted in text:
            return text
        time.sleep(0.5)
    raise AssertionError(
        f"{url} never served {wanted!r} (exit code {process.poll()}); it served {len(text)} bytes.\n"
        + log.read_text(errors="replace")[-4000:]
    )
