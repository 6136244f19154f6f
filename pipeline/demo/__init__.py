"""``livedash demo``: the whole pipeline in one process, with nothing installed but the package.

SQLite in a work folder, Dramatiq's in-memory broker with an in-process worker, the demo data source and
the OpenAI emulator on free ports of 127.0.0.1. The real actors run: the CSV import tick fans out per
company, each import hands its rows to import processing, which hands its sessions to AI analysis; those are
queued for the Batch API, and the batch ticks submit, poll and ingest the batches, exactly as on RabbitMQ.
The ticks go through the scheduling layer (an operator's trigger), so every run is in the run history.

The data set has two deliberate faults, and the demo checks that the pipeline copes with them as designed:

* the first company's CSV has a few broken rows between its good ones: each must become a CSV row error with
  its line number and reason, and every good row of that file must still be imported;
* the last company is registered with a wrong password: its fetch must fail with HTTP 401, be recorded as a
  failed fetch, not be retried (a 401 is not transient), and stop nobody else.

:func:`run_demo` returns a :class:`DemoReport`; its ``unexpected`` lists every way the run differed from that.
"""

from __future__ import annotations

from pipeline.demo.progress import StageProgress, read_progress
from pipeline.demo.report import (
    CompanyOutcome,
    DemoReport,
    FetchFailure,
    RowErrorRecord,
    SchedulerRunRecord,
    SessionFailure,
)
from pipeline.demo.run import run_demo
from pipeline.demo.scenario import InjectedRow

__all__ = [
    "CompanyOutcome",
    "DemoReport",
    "FetchFailure",
    "InjectedRow",
    "RowErrorRecord",
    "SchedulerRunRecord",
    "SessionFailure",
    "StageProgress",
    "read_progress",
    "run_demo",
]
