"""The shape of one language's chat phrases, from which the demo generator builds transcripts.

An exchange is one user turn and the assistant's reply. Text may span several lines; a continuation line never
starts with ``[`` or a role name, so it cannot be mistaken for a new turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.db.enums import SessionCategory

__all__ = ["CATEGORIES", "Exchange", "Phrasebook"]

#: The topics a chat can be about: the ``SessionCategory`` values, in their order.
CATEGORIES: tuple[str, ...] = tuple(category.value for category in SessionCategory)

Exchange = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Phrasebook:
    """Everything said in one language.

    ``labels`` are the exported CSV's free-text spellings of the language (``english``, ``Dutch`` ...).
    In ``hr_referrals`` the placeholder ``{hr}`` stands for the company's HR address.
    """

    language: str
    labels: tuple[str, ...]
    greetings: tuple[str, ...]
    greeting_replies: tuple[str, ...]
    topics: Mapping[str, tuple[Exchange, ...]]
    followups: tuple[Exchange, ...]
    escalations: tuple[Exchange, ...]
    hr_referrals: tuple[Exchange, ...]
    closings: tuple[Exchange, ...]

    def __post_init__(self) -> None:
        missing = set(CATEGORIES) - set(self.topics)
        if missing:
            raise ValueError(f"phrasebook {self.language!r} has no exchanges for {sorted(missing)}")
