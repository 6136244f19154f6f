"""Reusing an analysis already paid for: the same question (``analysis_key``) gets the same answer, free.

The key covers what was sent (the session's messages as the prompt shows them), the model and the prompt and
schema versions. A session derived again from an unchanged transcript asks the same question: its answered
request's kept answer is applied again and nothing is sent, so nothing is billed. A changed transcript, model
or prompt changes the key, and the session is analysed again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import AIProcessingRequest
from pipeline.stages.analysis_results import Answer, answer_from_json

__all__ = ["reusable_answers"]


def reusable_answers(db: Session, keys: Mapping[uuid.UUID, str]) -> dict[uuid.UUID, Answer]:
    """The kept answer of each session in ``keys`` (session id: analysis key) answered before for its key."""
    if not keys:
        return {}
    rows = db.execute(
        select(
            AIProcessingRequest.session_id,
            AIProcessingRequest.analysis_key,
            AIProcessingRequest.answer,
            AIProcessingRequest.model,
            AIProcessingRequest.openai_request_id,
        ).where(
            AIProcessingRequest.session_id.in_(keys),
            AIProcessingRequest.analysis_key.in_(set(keys.values())),
            AIProcessingRequest.success.is_(True),
            AIProcessingRequest.answer.is_not(None),
        )
    )
    return {
        session_id: answer_from_json(answer, model, request_id)
        for session_id, key, answer, model, request_id in rows
        if keys[session_id] == key
    }
