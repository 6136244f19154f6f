"""``livedash devtools openai``: serving the OpenAI emulator from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import typer
from typer.testing import CliRunner

from pipeline.cli.openai_emulator import openai as openai_command

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_the_command_prints_its_url_serves_with_the_latency_asked_for_and_stops_on_sigterm() -> None:
    # Given the command running on a free port with a latency
    command = [
        sys.executable,
        "-c",
        "from pipeline.cli import main; main()",
        "devtools",
        "openai",
        "--port",
        "0",
        "--latency",
        "0.2",
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=PROJECT_ROOT) as process:
        try:
            # When it has printed its URL
            assert process.stdout is not None
            url = process.stdout.readline().split(" at ")[1].split()[0]

            # Then the SDK gets answers there, each taking at least the latency
            assert url.endswith("/v1")
            with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client:
                started = time.monotonic()
                completion = client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "Session ID: s-1"}]
                )
                assert time.monotonic() - started >= 0.2
            assert completion.model == "gpt-4o-2024-08-06"

            # And SIGTERM ends it cleanly
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()


def test_the_command_mounts_as_openai_under_a_group() -> None:
    # Given a command group like ``livedash devtools``, with the command mounted the way devtools.py would
    group = typer.Typer()

    @group.callback()
    def devtools() -> None:
        """Demo tools."""

    group.command()(openai_command)

    # When its help is asked for
    result = CliRunner().invoke(group, ["openai", "--help"])

    # Then it is there as ``openai``, with its three options
    assert result.exit_code == 0
    assert all(option in result.stdout for option in ("--port", "--host", "--latency"))
