"""`livedash sessions failed|retry` and the pipeline view of `livedash status`, on the embedded setup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from tests.cli.conftest import Invoke, clear_process_caches
from tests.demo_source import Source, running_source


@pytest.fixture
def chats(tmp_path: Path) -> Iterator[Source]:
    with running_source(tmp_path / "chats", companies=1, sessions=6, transcripts=True) as running:
        yield running


@pytest.fixture
def embedded(livedash: Invoke, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("BROKER", "memory")
    monkeypatch.setenv("CSV_ALLOW_PRIVATE_NETWORKS", "true")
    clear_process_caches()
    return livedash


def _add_company(livedash: Invoke, source: Source) -> None:
    company = source.company(0)
    added = livedash(
        "companies",
        "add",
        "--name",
        company.name,
        "--csv-url",
        source.csv_url(0),
        "--username",
        company.username,
        "--password",
        company.password,
        # The demo source serves plain http.
        "--allow-http",
    )
    assert added.exit_code == 0, added.output


def test_a_failed_transcript_is_listed_with_its_reason_and_runs_again_after_a_retry(
    embedded: Invoke, chats: Source
) -> None:
    # Given a company whose first session's transcript is missing on the server, imported and processed
    first_id = chats.csv_path(0).read_text().split(",", 1)[0]
    transcript = chats.transcript_path(0, first_id)
    saved = transcript.read_bytes()
    transcript.unlink()
    _add_company(embedded, chats)
    embedded("schedulers", "trigger", "csv-import", "--inline")
    processed = embedded("schedulers", "trigger", "import-processing", "--inline")
    assert "5 completed, 1 failed" in processed.stdout, processed.output

    # When the operator looks at the pipeline and its failures
    status = json.loads(embedded("status", "--json").stdout)
    failed = json.loads(embedded("sessions", "failed", "--stage", "transcript_fetch", "--json").stdout)

    # Then the stage counts and the failure with its reason are there
    assert status["totalSessions"] == 6
    assert status["pipeline"]["TRANSCRIPT_FETCH"] == {"COMPLETED": 5, "FAILED": 1}
    assert status["pipeline"]["AI_ANALYSIS"] == {"PENDING": 5, "SKIPPED": 1}
    [failure] = failed
    assert failure["stage"] == "TRANSCRIPT_FETCH"
    assert "404" in failure["error"]

    # When the transcript is back and the operator retries the stage
    transcript.write_bytes(saved)
    retried = embedded("sessions", "retry", "--stage", "TRANSCRIPT_FETCH")
    again = embedded("schedulers", "trigger", "import-processing", "--inline")

    # Then the session is derived again, this time with its messages
    assert retried.stdout.startswith("1 reset to PENDING")
    assert "1 completed, 0 failed" in again.stdout, again.output
    status = json.loads(embedded("status", "--json").stdout)
    assert status["pipeline"]["TRANSCRIPT_FETCH"] == {"COMPLETED": 6}
    assert status["pipeline"]["AI_ANALYSIS"] == {"PENDING": 6}
    assert json.loads(embedded("sessions", "failed", "--json").stdout) == []


def test_an_unknown_stage_or_company_is_one_clear_line(embedded: Invoke) -> None:
    bad_stage = embedded("sessions", "failed", "--stage", "TELEPORT")
    assert bad_stage.exit_code == 2
    assert "unknown stage 'TELEPORT'" in bad_stage.stderr

    bad_company = embedded("sessions", "retry", "--stage", "AI_ANALYSIS", "--company", "nope")
    assert bad_company.exit_code == 3
    assert "no company with id 'nope'" in bad_company.stderr


@pytest.mark.parametrize("mode", ["sync", "batch"])
def test_the_whole_pipeline_runs_inline_on_the_embedded_setup(
    embedded: Invoke, chats: Source, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Given a company on the demo source and the OpenAI emulator (batches finish at once)
    _add_company(embedded, chats)
    instant = Knobs(validating_seconds=0, in_progress_seconds=0, finalizing_seconds=0)
    with OpenAIEmulator(knobs=instant) as emulator:
        monkeypatch.setenv("OPENAI_BASE_URL", emulator.url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("AI_PROCESSING_MODE", mode)
        monkeypatch.setenv("BATCH_MIN_REQUESTS", "1")
        clear_process_caches()

        # When each stage's tick runs in this process, in pipeline order
        embedded("schedulers", "trigger", "csv-import", "--inline")
        embedded("schedulers", "trigger", "import-processing", "--inline")
        analysed = embedded("schedulers", "trigger", "session-processing", "--inline")
        submitted = embedded("schedulers", "trigger", "batch-processing", "--inline")
        checked = embedded("schedulers", "trigger", "batch-processing-check", "--inline")
        billed = emulator.ledger()

    # Then every session is analysed, synchronously or through one batch, each answer billed once
    if mode == "sync":
        assert "6 analysed, 0 failed" in analysed.stdout, analysed.output
        assert submitted.stdout.startswith("batch submit tick: 0 batches planned")
    else:
        assert "6 queued for the Batch API" in analysed.stdout, analysed.output
        assert submitted.stdout.startswith("batch submit tick: 1 batches planned"), submitted.output
        # And the planned batch was submitted in this process, by the submit actor's entry point
        [_, submission] = submitted.stdout.splitlines()
        assert submission.startswith("batch ") and not submission.endswith("unknown"), submitted.output
        assert checked.stdout.startswith("batch check: 1 polled, 1 ingested"), checked.output
    status = json.loads(embedded("status", "--json").stdout)
    assert status["pipeline"]["AI_ANALYSIS"] == {"COMPLETED": 6}
    assert status["pipeline"]["QUESTION_EXTRACTION"] == {"COMPLETED": 6}
    assert len({entry.session_id for entry in billed}) == len(billed) == 6
    assert {entry.kind for entry in billed} == {"chat" if mode == "sync" else "batch"}
    if mode == "batch":
        # And the batch is listed and shown with its counts; a finished one cannot be cancelled
        [batch] = json.loads(embedded("batches", "list", "--json").stdout)
        assert (batch["status"], batch["requests"], batch["completed"]) == ("PROCESSED", 6, 6)
        shown = json.loads(embedded("batches", "show", batch["id"]).stdout)
        assert shown["requestsByStatus"] == {"PROCESSING_COMPLETE": 6}
        with OpenAIEmulator() as other:
            monkeypatch.setenv("OPENAI_BASE_URL", other.url)
            clear_process_caches()
            refused = embedded("batches", "cancel", batch["id"])
        assert refused.exit_code == 1 and "refused to cancel" in refused.stderr
        assert embedded("batches", "show", "nope").exit_code == 3
