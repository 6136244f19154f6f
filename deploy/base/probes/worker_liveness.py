"""Liveness probe of a worker pool: fails when the pool's metrics stop answering, or when messages have been
in progress with none finishing for longer than any actor may run (a stuck consumer).

Kubernetes runs it as an exec probe (``python /etc/livedash/probes/worker_liveness.py``) in the worker
container; it needs nothing but the standard library. It reads the pool's Prometheus endpoint (Dramatiq's
middleware, all worker processes, ``METRICS_PORT``) and compares two of Dramatiq's series with what the
previous probe saw, kept in a small state file:

* ``dramatiq_messages_inprogress`` (summed over queues and actors): messages a worker thread is running now;
* ``dramatiq_messages_total`` (summed): messages finished, successfully or not.

Exit 0 (alive) when the endpoint answers and either nothing is in progress or the finished count last moved
less than ``LIVENESS_STUCK_AFTER_SECONDS`` ago. Exit 1 otherwise, with the reason on stderr (Kubernetes shows
it in the pod's events).

What it catches: a metrics endpoint that stopped answering while the container lives on (Dramatiq's exporter
is a process of its own), and worker threads stuck in an actor past its time limit (Dramatiq's TimeLimit
cannot interrupt a blocking system call, so such a thread never frees itself and never takes another
message). What it does not catch: an idle pool that lost its RabbitMQ
consumer while nothing is in progress (RabbitMQ's consumer count and the health API's queue checks show
that), nor a slow but moving pool. The threshold must stay above the longest actor time limit
(``ACTOR_TIME_LIMIT_MS``; the CSV import's is ``CSV_IMPORT_TIMEOUT`` + 60 s), or a legitimately long message
restarts the pod.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

#: Where the pool serves its metrics (METRICS_PORT, 9191 by default).
DEFAULT_URL = "http://127.0.0.1:9191/metrics"
#: Above the default ACTOR_TIME_LIMIT_MS (600 s) with a margin.
DEFAULT_STUCK_AFTER_SECONDS = 660.0
# The pod's own emptyDir-backed /tmp (read-only root filesystem): no other user writes there.
DEFAULT_STATE_FILE = "/tmp/livedash-worker-liveness.json"  # noqa: S108

IN_PROGRESS = "dramatiq_messages_inprogress"
FINISHED = "dramatiq_messages_total"


def metric_sum(exposition: str, name: str) -> float:
    """The sum of every sample of ``name`` (any labels) in a Prometheus text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("#"):
            continue
        series, _, rest = line.partition(" ")
        if series == name or series.startswith(name + "{"):
            total += float(rest.split()[0])
    return total


def container_start() -> str:
    """When PID 1 (the pool's main process) started, in clock ticks since boot: the state file lives on a
    volume that outlives a container restart, and a restarted pool must not inherit the old pool's clock."""
    try:
        return Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def check(exposition: str, state_file: Path, stuck_after: float, now: float, started: str = "") -> str | None:
    """None when the pool looks alive, else the reason it does not. Updates ``state_file``."""
    in_progress = metric_sum(exposition, IN_PROGRESS)
    finished = metric_sum(exposition, FINISHED)
    try:
        previous = json.loads(state_file.read_text())
        moved_at = float(previous["moved_at"])
        moved = finished != float(previous["finished"]) or started != previous["started"]
    except (OSError, ValueError, KeyError, TypeError):
        moved_at, moved = now, True
    if moved or in_progress <= 0:
        moved_at = now
    state_file.write_text(json.dumps({"finished": finished, "moved_at": moved_at, "started": started}))
    stalled = now - moved_at
    if in_progress > 0 and stalled > stuck_after:
        return (
            f"messages in progress: {in_progress:.0f}, none finished for {stalled:.0f} s "
            f"(limit {stuck_after:.0f} s): a worker thread is stuck"
        )
    return None


def main() -> int:
    url = os.environ.get("LIVENESS_URL", DEFAULT_URL)
    stuck_after = float(os.environ.get("LIVENESS_STUCK_AFTER_SECONDS", DEFAULT_STUCK_AFTER_SECONDS))
    state_file = Path(os.environ.get("LIVENESS_STATE_FILE", DEFAULT_STATE_FILE))
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  the probe's own http URL
            exposition = response.read().decode("utf-8", "replace")
    except OSError as exc:
        print(f"worker metrics at {url} do not answer: {exc}", file=sys.stderr)
        return 1
    reason = check(exposition, state_file, stuck_after, time.time(), container_start())
    if reason:
        print(reason, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
