"""Test-only: session analysis without its database claim, to show the chaos suite fails when an invariant
breaks. A chaos run loads it into its worker pools (``ChaosPlan.extra_modules``); nothing else imports it.

Every session asked for is taken as claimed, whatever its state, and its state is left as it was: two
messages naming one session both analyse it, and the sweeps keep sending a session until it is done.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import ChatSession
from pipeline.settings import Settings
from pipeline.stages import batch_enqueue, session_analysis
from pipeline.stages.analysis_claims import ClaimedSession


def claim_without_the_database(
    db: Session, settings: Settings, session_ids: Sequence[uuid.UUID], *, now: datetime, lease: timedelta
) -> list[ClaimedSession]:
    rows = db.execute(select(ChatSession.id, ChatSession.company_id).where(ChatSession.id.in_(session_ids)))
    return [
        ClaimedSession(session_id, company_id, 1, settings.openai_model) for session_id, company_id in rows
    ]


CLAIM = "claim_analysable"
for stage in (session_analysis, batch_enqueue):
    setattr(stage, CLAIM, claim_without_the_database)
