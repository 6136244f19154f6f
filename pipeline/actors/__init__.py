"""Every actor of the pipeline; the module that workers and the scheduler import.

``dramatiq pipeline.actors --queues csv-import`` runs one stage's worker pool. The broker is built from the
settings and installed before any actor is declared, because Dramatiq binds actors to the global broker at
declaration time.
"""

from __future__ import annotations

import dramatiq

from pipeline.broker import build_broker
from pipeline.settings import get_settings

broker = build_broker(get_settings())
dramatiq.set_broker(broker)

from pipeline.actors import batch_processing, csv_import, import_processing, session_processing  # noqa: E402

__all__ = ["batch_processing", "broker", "csv_import", "import_processing", "session_processing"]
