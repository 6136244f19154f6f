"""The pipeline's own Prometheus metrics (Dramatiq's middleware adds per-actor ones beside them).

Worker pools run several processes, so these live in prometheus_client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set (``pipeline.pool_metrics`` sets it); counters and histograms need
nothing more.

A labelled counter has no series until its first increment, so ``increase()`` would miss a process's first
failure (a series that appears at 1 has increased by nothing). Each process therefore creates, at start, its
counters at zero for every label value known then (:func:`create_series`, with the counters of its role:
:data:`WORKER_COUNTERS`, :data:`SCHEDULER_COUNTERS`, :data:`HEALTH_COUNTERS`).

Label values are fixed words (outcomes, queue and scheduler ids) except where they come from outside, such
as a model name an answer reports: those pass through :func:`label` (the pipeline's one redaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import Counter, Gauge, Histogram

from pipeline.queues import ALL_QUEUES, IMPORT_PROCESSING, SESSION_PROCESSING
from pipeline.redaction import redact
from pipeline.settings import Settings

__all__ = [
    "AI_ANALYSES",
    "AI_BUDGET_USED_RATIO",
    "AI_REQUESTS",
    "BATCHES",
    "CSV_FETCHES",
    "CSV_FETCH_BYTES",
    "CSV_FETCH_DURATION",
    "CSV_ROWS",
    "DEAD_LETTERS",
    "HEALTH_COUNTERS",
    "HEALTH_SOURCE_ERRORS",
    "OLDEST_OPEN_BATCH",
    "OPENAI_COST_EUR",
    "OPENAI_TOKENS",
    "PUBLISH_FAILURES",
    "SCHEDULER_COUNTERS",
    "SCHEDULER_HEALTHY",
    "SCHEDULER_LAST_SUCCESS",
    "SCHEDULER_LOOP_ERRORS",
    "SCHEDULER_RUNS",
    "SCHEDULER_RUN_DURATION",
    "SCHEDULER_TICKS",
    "STAGE_ITEMS",
    "STAGE_LAG",
    "TRANSCRIPT_FETCH_BYTES",
    "TRANSCRIPT_FETCH_DURATION",
    "UNKNOWN_PRICE",
    "WORKER_COUNTERS",
    "create_series",
    "label",
]

#: The label values each labelled counter takes; the help texts below name the same ones.
CSV_FETCH_OUTCOMES = ("imported", "unchanged", "failed", "skipped_running", "busy")
CSV_ROW_RESULTS = ("new", "changed", "duplicate", "invalid")
#: The stages that count their items (the others finish whole sweeps, counted as scheduler runs).
ITEM_STAGES = (IMPORT_PROCESSING, SESSION_PROCESSING)
STAGE_OUTCOMES = ("completed", "failed", "skipped", "retrying")
OPENAI_MODES = ("sync", "batch")
#: How an analysis was obtained: the two billed modes, or reused from an earlier answer to the same content.
ANALYSIS_MODES = (*OPENAI_MODES, "reused")
TOKEN_KINDS = ("prompt", "completion")
TICK_OUTCOMES = ("enqueued", "duplicate", "skipped_paused", "skipped_stopped", "skipped_overlap", "failed")
RUN_OUTCOMES = ("succeeded", "failed", "duplicate")
HEALTH_SOURCES = ("metrics", "rabbitmq", "database", "prometheus")


def label(value: str) -> str:
    """A label value from outside the pipeline, redacted (a label is exported as it is to every scraper)."""
    return redact(value)


CSV_FETCHES = Counter(
    "livedash_csv_fetches_total",
    "Company CSV fetches by outcome (imported, unchanged, failed, skipped_running, busy).",
    ["outcome"],
)
CSV_ROWS = Counter(
    "livedash_csv_rows_total",
    "CSV rows by result (new, changed, duplicate, invalid).",
    ["result"],
)
CSV_FETCH_DURATION = Histogram(
    "livedash_csv_fetch_duration_seconds",
    "Duration of one company CSV fetch and import.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
CSV_FETCH_BYTES = Histogram(
    "livedash_csv_fetch_bytes",
    "Size of fetched company CSV bodies.",
    buckets=(1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9),
)
PUBLISH_FAILURES = Counter(
    "livedash_publish_failures_total",
    "Messages that could not be published to RabbitMQ (the next sweep recovers their work).",
    ["queue"],
)

STAGE_ITEMS = Counter(
    "livedash_stage_items_total",
    "Items finished by a pipeline stage, by outcome (completed, failed, skipped, retrying).",
    ["stage", "outcome"],
)
STAGE_LAG = Gauge(
    "livedash_stage_lag_seconds",
    "Age of the oldest item waiting for a stage (0 when nothing waits), as last seen by its sweep.",
    ["stage"],
    multiprocess_mode="mostrecent",
)
TRANSCRIPT_FETCH_DURATION = Histogram(
    "livedash_transcript_fetch_duration_seconds",
    "Duration of one successful transcript download.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRANSCRIPT_FETCH_BYTES = Histogram(
    "livedash_transcript_fetch_bytes",
    "Size of downloaded transcripts.",
    buckets=(256, 1e3, 4e3, 1.6e4, 6.4e4, 2.56e5, 1e6, 5e6),
)

OPENAI_TOKENS = Counter(
    "livedash_openai_tokens_total",
    "Tokens billed by OpenAI, by requested model, mode (sync, batch) and kind (prompt, completion).",
    ["model", "mode", "kind"],
)
OPENAI_COST_EUR = Counter(
    "livedash_openai_cost_eur_total",
    "Cost of OpenAI answers in EUR, by requested model and mode; answers of unpriced models count 0 here.",
    ["model", "mode"],
)
UNKNOWN_PRICE = Counter(
    "livedash_openai_unknown_price_total",
    "Answers of a model that had no price valid at request time (tokens recorded, cost flagged unknown).",
    ["model"],
)

AI_ANALYSES = Counter(
    "livedash_ai_analyses_total",
    "Session analyses applied, by how they were obtained: sync (a chat completion), batch (a Batch API line) "
    "or reused (an earlier answer to the same content, not billed again).",
    ["mode"],
)
AI_BUDGET_USED_RATIO = Gauge(
    "livedash_ai_budget_used_ratio",
    "Share of a company's monthly AI budget spent or reserved this month (1: reached), as last seen by the "
    "batch check tick; 0 for a company with an unlimited budget.",
    ["company"],
    multiprocess_mode="mostrecent",
)

BATCHES = Gauge(
    "livedash_batches",
    "OpenAI batches by status, as last seen by the batch check tick.",
    ["status"],
    multiprocess_mode="mostrecent",
)
AI_REQUESTS = Gauge(
    "livedash_ai_requests",
    "AI processing requests by status, as last seen by the batch check tick.",
    ["status"],
    multiprocess_mode="mostrecent",
)
OLDEST_OPEN_BATCH = Gauge(
    "livedash_oldest_open_batch_age_seconds",
    "Age of the oldest batch not yet processed (0 when none is open).",
    multiprocess_mode="mostrecent",
)

SCHEDULER_TICKS = Counter(
    "livedash_scheduler_ticks_total",
    "Cron ticks seen by a scheduler replica, by outcome (enqueued, duplicate, skipped_paused, "
    "skipped_stopped, skipped_overlap, failed); duplicate: another replica enqueued it; failed: the publish "
    "failed and the tick stays due.",
    ["scheduler", "outcome"],
)
SCHEDULER_LOOP_ERRORS = Counter(
    "livedash_scheduler_loop_errors_total",
    "Scheduler passes that failed (broker or database unreachable); the pass is retried and nothing is lost.",
)
SCHEDULER_RUNS = Counter(
    "livedash_scheduler_runs_total",
    "Finished runs of a scheduler's tick, by outcome (succeeded, failed, duplicate).",
    ["scheduler", "outcome"],
)
SCHEDULER_RUN_DURATION = Histogram(
    "livedash_scheduler_run_duration_seconds",
    "Duration of one run of a scheduler's tick.",
    ["scheduler"],
    buckets=(0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600),
)
SCHEDULER_LAST_SUCCESS = Gauge(
    "livedash_scheduler_last_success_timestamp_seconds",
    "Unix time of the last successful run of a scheduler's tick.",
    ["scheduler"],
    multiprocess_mode="max",
)

SCHEDULER_HEALTHY = Gauge(
    "livedash_scheduler_healthy",
    "1 when the health aggregator judges a scheduler healthy, 0 when not.",
    ["scheduler"],
    multiprocess_mode="mostrecent",
)
HEALTH_SOURCE_ERRORS = Counter(
    "livedash_health_source_errors_total",
    "Sources the health aggregator could not read (metrics, rabbitmq, database, prometheus).",
    ["source"],
)
DEAD_LETTERS = Gauge(
    "livedash_dead_letters",
    "Messages waiting in a queue's dead-letter queue (<queue>.XQ) of RABBITMQ_URL's virtual host, as last "
    "read by the health aggregator.",
    ["vhost", "queue"],
    multiprocess_mode="mostrecent",
)


#: The counters each kind of process may increment, created at zero when it starts.
WORKER_COUNTERS = (
    CSV_FETCHES,
    CSV_ROWS,
    PUBLISH_FAILURES,
    STAGE_ITEMS,
    OPENAI_TOKENS,
    OPENAI_COST_EUR,
    UNKNOWN_PRICE,
    SCHEDULER_TICKS,
    SCHEDULER_RUNS,
    AI_ANALYSES,
)
SCHEDULER_COUNTERS = (SCHEDULER_TICKS, PUBLISH_FAILURES)
HEALTH_COUNTERS = (HEALTH_SOURCE_ERRORS,)


def _label_values(settings: Settings, counter: Counter) -> Iterator[tuple[str, ...]]:
    """Every label combination of ``counter`` known before anything happened."""
    from pipeline.scheduling.jobs import scheduled_jobs

    model = label(settings.openai_model)
    schedulers = [job.id for job in scheduled_jobs(settings)]
    known: dict[Counter, Iterable[tuple[str, ...]]] = {
        CSV_FETCHES: [(outcome,) for outcome in CSV_FETCH_OUTCOMES],
        CSV_ROWS: [(result,) for result in CSV_ROW_RESULTS],
        PUBLISH_FAILURES: [(queue,) for queue in ALL_QUEUES],
        STAGE_ITEMS: [(stage, outcome) for stage in ITEM_STAGES for outcome in STAGE_OUTCOMES],
        OPENAI_TOKENS: [(model, mode, kind) for mode in OPENAI_MODES for kind in TOKEN_KINDS],
        OPENAI_COST_EUR: [(model, mode) for mode in OPENAI_MODES],
        UNKNOWN_PRICE: [(model,)],
        SCHEDULER_TICKS: [(job, outcome) for job in schedulers for outcome in TICK_OUTCOMES],
        SCHEDULER_RUNS: [(job, outcome) for job in schedulers for outcome in RUN_OUTCOMES],
        HEALTH_SOURCE_ERRORS: [(source,) for source in HEALTH_SOURCES],
        AI_ANALYSES: [(mode,) for mode in ANALYSIS_MODES],
    }
    yield from known[counter]


def create_series(settings: Settings, counters: Iterable[Counter]) -> None:
    """Create each of ``counters`` at zero for every label value known at start (see the module's doc)."""
    for counter in counters:
        for values in _label_values(settings, counter):
            counter.labels(*values).inc(0)
