"""Piped into another program, a table keeps every value whole; so does --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.cli.conftest import Invoke

#: Longer than any terminal: a table fitted to 80 columns would cut it and the id beside it.
LONG_URL = "https://exports.example.com/" + "/".join(["a-rather-long-path-segment"] * 6) + "/sessions.csv"


def _piped(*arguments: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_piped_table_keeps_ids_and_urls_whole(livedash: Invoke) -> None:
    # Given a company with a URL longer than a terminal line (in the database of the fixture's DATABASE_URL)
    company_id = livedash("companies", "add", "--name", "Acme", "--csv-url", LONG_URL).stdout.strip()

    # When the companies are listed into a pipe, as a table and as JSON
    table = _piped("companies", "list")
    listed = json.loads(_piped("companies", "list", "--json"))

    # Then the table line holds the whole id and the whole URL, and nothing is cut with an ellipsis
    [row] = [line for line in table.splitlines() if "Acme" in line]
    assert company_id in row and LONG_URL in row
    assert "…" not in table
    # And the JSON has them too
    assert [(entry["id"], entry["csvUrl"]) for entry in listed] == [(company_id, LONG_URL)]
