"""The pipeline's broker and actors: the module that ``dramatiq`` and ``periodiq`` import.

``dramatiq pipeline.actors --queues csv-import`` runs one stage's worker pool; ``periodiq pipeline.actors``
sends the ticks (each claims its own ledger entry, so it can run beside ``livedash scheduler``). Importing
this module builds the broker from the settings (it opens no connection) and declares the actors of the job
registry on it, and nothing else: engines, HTTP and OpenAI clients and thread pools are made by the first
message that needs them (``pipeline.stages.runtime.worker_runtime``).

In a process of Dramatiq's command line, the very first thing it does is to prepare the process
(``pipeline.pool_metrics``): the pool's metrics directory, before prometheus_client is imported, and the
configured logging.
"""

from __future__ import annotations

from pipeline import pool_metrics
from pipeline.settings import get_settings

if pool_metrics.in_dramatiq_worker():
    pool_metrics.prepare_worker_process(get_settings())

import dramatiq

from pipeline.broker import build_broker
from pipeline.stages.actors import declare_actors
from pipeline.stages.runtime import worker_runtime

__all__ = ["actors", "broker"]

broker = build_broker(get_settings(), role="pipeline.actors")
dramatiq.set_broker(broker)
#: Every actor, by name.
actors = declare_actors(broker, get_settings(), worker_runtime)
