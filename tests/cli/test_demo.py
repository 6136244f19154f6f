"""`livedash demo`: the whole pipeline in one process, with no RabbitMQ, PostgreSQL or OpenAI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_the_whole_pipeline_without_any_service(tmp_path: Path) -> None:
    # Given an environment whose RabbitMQ and database, if they were used, would not answer
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "BROKER"}}
    env.update(
        RABBITMQ_URL="amqp://guest:guest@127.0.0.1:1/%2F",
        OPENAI_BASE_URL="http://127.0.0.1:1/v1",
        COLUMNS="200",
    )

    # When the demo runs with two companies of eight sessions, keeping its folder
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipeline.cli import main; main()",
            "demo",
            "--companies",
            "2",
            "--sessions",
            "8",
            "--keep",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    # Then it succeeds, every session went through every stage, and its database is left where asked
    assert result.returncode == 0, result.stderr
    assert "16 CSV rows imported, 16 sessions with" in result.stdout
    assert "16 analysed through" in result.stdout
    assert (tmp_path / "livedash.sqlite3").exists()
