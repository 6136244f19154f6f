"""``livedash devtools``: generating a data set and serving it from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.devtools.manifest import load_manifest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_generate_writes_the_data_set_and_prints_one_summary_line(tmp_path: Path) -> None:
    # When a data set is generated from the command line, without transcripts
    result = CliRunner().invoke(
        app,
        [
            "devtools",
            "generate",
            "--out",
            str(tmp_path),
            "--companies",
            "2",
            "--sessions",
            "25",
            "--seed",
            "4",
            "--base-url",
            "http://demo.test",
            "--no-transcripts",
        ],
        catch_exceptions=False,
    )

    # Then it succeeds with a one-line summary
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    assert "50 rows" in result.stdout and "manifest.json" in result.stdout

    # And the manifest records what was asked for
    manifest = load_manifest(tmp_path)
    assert (manifest.seed, manifest.base_url, manifest.transcripts) == (4, "http://demo.test", False)
    assert [company.sessions for company in manifest.companies] == [25, 25]


def test_source_prints_its_url_and_serves_until_sigterm(tmp_path: Path) -> None:
    # Given the source command running on a free port
    command = [
        sys.executable,
        "-c",
        "from pipeline.cli import main; main()",
        "devtools",
        "source",
        "--dir",
        str(tmp_path),
        "--port",
        "0",
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=PROJECT_ROOT) as process:
        try:
            # When it has printed its URL
            assert process.stdout is not None
            line = process.stdout.readline()
            url = line.split(" at ")[1].split()[0]

            # Then it answers there
            assert httpx.get(f"{url}/_control/stats", timeout=10).json() == {"total": 0, "paths": {}}

            # And SIGTERM ends it cleanly
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
