"""`livedash schedulers list|pause|resume|start|stop`: the operator's view and control of the schedulers."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke


def _states(livedash: Invoke) -> dict[str, str]:
    result = livedash("schedulers", "list", "--json")
    assert result.exit_code == 0, result.output
    return {entry["id"]: entry["control"] for entry in json.loads(result.output)}


def test_list_shows_every_scheduler_with_its_cron_queue_and_next_run(livedash: Invoke) -> None:
    # When the schedulers are listed on a new database
    result = livedash("schedulers", "list", "--json")

    # Then all five appear, active, with their queue, cron and next run, and no run yet
    assert result.exit_code == 0, result.output
    listed = {entry["id"]: entry for entry in json.loads(result.output)}
    assert list(listed) == [
        "csv-import",
        "import-processing",
        "session-processing",
        "batch-processing",
        "batch-processing-check",
    ]
    assert listed["batch-processing-check"]["queue"] == "batch-processing"
    assert listed["csv-import"]["cron"] == "*/10 * * * *"
    assert listed["csv-import"]["control"] == "ACTIVE"
    assert listed["csv-import"]["lastRun"] is None
    assert listed["csv-import"]["nextRun"].endswith("Z")
    # And the table form names them too
    table = livedash("schedulers", "list")
    assert "csv-import" in table.output and "ACTIVE" in table.output


def test_pause_resume_stop_start_change_the_state_every_replica_reads(livedash: Invoke) -> None:
    assert (
        livedash("schedulers", "pause", "csv-import").output
        == "csv-import: Action 'pause' completed successfully\n"
    )
    assert _states(livedash)["csv-import"] == "PAUSED"
    livedash("schedulers", "resume", "csv-import")
    assert _states(livedash)["csv-import"] == "ACTIVE"
    livedash("schedulers", "stop", "batch-processing")
    states = _states(livedash)
    assert (states["batch-processing"], states["csv-import"]) == ("STOPPED", "ACTIVE")
    livedash("schedulers", "start", "batch-processing")
    assert set(_states(livedash).values()) == {"ACTIVE"}


def test_an_unknown_scheduler_is_refused_with_the_known_ones(livedash: Invoke) -> None:
    result = livedash("schedulers", "pause", "csv")
    assert result.exit_code == 3
    assert "unknown scheduler 'csv' (known: csv-import, import-processing" in result.output
    assert set(_states(livedash).values()) == {"ACTIVE"}
