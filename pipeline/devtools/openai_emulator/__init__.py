"""An OpenAI emulator for tests and the demo: chat completions, files and the Batch API, over real HTTP.

The real ``openai`` SDK talks to it through ``OPENAI_BASE_URL``. Answers are a deterministic analysis of the
transcript asked about (``analyse_conversation``), so tests know them in advance; knobs add latency, errors
and wrong answers, and shape how batches end; a ledger records every answer the real API would have billed.
"""

from __future__ import annotations

from pipeline.devtools.openai_emulator.analyst import analyse_conversation
from pipeline.devtools.openai_emulator.chat_routes import FAULT_HEADER
from pipeline.devtools.openai_emulator.completions import MODEL_SNAPSHOTS
from pipeline.devtools.openai_emulator.knobs import AnswerFault, BatchOutcome, Knobs, RequestFault
from pipeline.devtools.openai_emulator.ledger import LedgerEntry
from pipeline.devtools.openai_emulator.server import OpenAIEmulator, serve_forever

__all__ = [
    "FAULT_HEADER",
    "MODEL_SNAPSHOTS",
    "AnswerFault",
    "BatchOutcome",
    "Knobs",
    "LedgerEntry",
    "OpenAIEmulator",
    "RequestFault",
    "analyse_conversation",
    "serve_forever",
]
