"""The pipeline's broker and actors: the module that ``dramatiq`` and ``periodiq`` import.

``dramatiq pipeline.actors --queues csv-import`` runs one stage's worker pool; ``periodiq pipeline.actors``
sends the ticks (each claims its own ledger entry, so it can run beside ``livedash scheduler``). Importing
this module builds the broker from the settings (it opens no connection) and declares the actors of the job
registry on it, and nothing else: engines, HTTP and OpenAI clients and thread pools are made by the first
message that needs them (``pipeline.stages.runtime.worker_runtime``).
"""

from __future__ import annotations

import dramatiq

from pipeline.broker import build_broker
from pipeline.settings import get_settings
from pipeline.stages.actors import declare_actors
from pipeline.stages.runtime import worker_runtime

__all__ = ["actors", "broker"]

broker = build_broker(get_settings())
dramatiq.set_broker(broker)
#: Every actor, by name.
actors = declare_actors(broker, get_settings(), worker_runtime)
