"""Test-only: session analysis without its database claim, to show the chaos suite fails when an invariant
breaks. A chaos run loads it into its worker pools (``ChaosPlan.extra_modules``); nothing else imports it.

Every session asked for is taken as claimed, whatever its state, and its state is left as it was: two
messages naming one session both analyse it, and the sweeps keep sending a session until it is done. The reuse
of an answer to the same content is switched off too: it would otherwise answer the second analysis from the
first without a bill, a second line of defence that hides the missing claim from the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import ChatSession
from pipeline.settings import Settings
from pipeline.stages import batch_enqueue, session_analysis
from pipeline.stages.analysis_claims import ClaimedSession
from pipeline.stages.analysis_results import Answer


def claim_without_the_database(
    db: Session, settings: Settings, session_ids: Sequence[uuid.UUID], *, now: datetime, lease: timedelta
) -> list[ClaimedSession]:
    rows = db.execute(select(ChatSession.id, ChatSession.company_id).where(ChatSession.id.in_(session_ids)))
    return [
        ClaimedSession(session_id, company_id, 1, settings.openai_model) for session_id, company_id in rows
    ]


def nothing_to_reuse(db: Session, keys: Mapping[uuid.UUID, str]) -> dict[uuid.UUID, Answer]:
    return {}


CLAIM, REUSE = "claim_analysable", "reusable_answers"
for stage in (session_analysis, batch_enqueue):
    setattr(stage, CLAIM, claim_without_the_database)
    setattr(stage, REUSE, nothing_to_reuse)
