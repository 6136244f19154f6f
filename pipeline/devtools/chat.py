"""One demo chat: what it is about and when its turns happen, and its transcript in the text format.

A session is planned from the company's random stream; the transcript's wording and turn times come from
a separate stream seeded by the plan. So the CSV never depends on whether transcripts are written, and a
CSV-only run skips the wording entirely.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.devtools import phrases_de, phrases_en, phrases_nl, phrases_tr
from pipeline.devtools.phrasebook import Exchange, Phrasebook
from pipeline.devtools.weighted import Weighted, choose

__all__ = ["PHRASEBOOKS", "SessionPlan", "format_time", "plan_session", "render_transcript"]

#: The naive local time format of the exports, ``DD.MM.YYYY HH:mm:ss``, in both the CSV and the transcript.
_TIME_FORMAT = "%02d.%02d.%d %02d:%02d:%02d"

PHRASEBOOKS: Mapping[str, Phrasebook] = {
    book.language: book
    for book in (phrases_en.PHRASEBOOK, phrases_nl.PHRASEBOOK, phrases_de.PHRASEBOOK, phrases_tr.PHRASEBOOK)
}

_TOPICS = Weighted(
    [
        ("SCHEDULE_HOURS", 18),
        ("LEAVE_VACATION", 12),
        ("SICK_LEAVE_RECOVERY", 9),
        ("SALARY_COMPENSATION", 11),
        ("CONTRACT_HOURS", 7),
        ("ONBOARDING", 7),
        ("OFFBOARDING", 4),
        ("WORKWEAR_STAFF_PASS", 5),
        ("TEAM_CONTACTS", 5),
        ("PERSONAL_QUESTIONS", 5),
        ("ACCESS_LOGIN", 7),
        ("SOCIAL_QUESTIONS", 4),
        ("UNRECOGNIZED_OTHER", 6),
    ]
)
_USER_TURNS = Weighted([(1, 12), (2, 14), (3, 18), (4, 16), (5, 13), (6, 11), (7, 8), (8, 8)])
_GREETING_ONLY_CHANCE = 0.4
_GREETING_CHANCE = 0.35
_ESCALATION_CHANCE = 0.07
#: Personal matters end up with HR far more often than questions the assistant can answer itself.
_HR_CHANCE = {
    "SICK_LEAVE_RECOVERY": 0.3,
    "SALARY_COMPENSATION": 0.25,
    "CONTRACT_HOURS": 0.2,
    "OFFBOARDING": 0.35,
    "PERSONAL_QUESTIONS": 0.15,
}
_HR_CHANCE_OTHERWISE = 0.04
_CLOSING_CHANCE = 0.6
#: The sample's average response times run from 1.487 to 3.977 seconds.
_REPLY_DELAY = (1.487, 3.977)
_USER_PAUSE = (6.0, 80.0)


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """Everything the CSV row and the transcript of one session must agree on.

    ``topic_index`` picks the topic exchange the chat is about; ``opener`` is the first user turn, which is
    either a greeting or that exchange's question. ``duration`` runs from the first user turn to the last
    reply.
    """

    session_id: str
    start: datetime
    language: str
    topic: str
    topic_index: int
    greeting: bool
    opener: str
    escalated: bool
    forwarded_hr: bool
    user_turns: int
    avg_response: float
    duration: float
    transcript_seed: int

    @property
    def greeting_only(self) -> bool:
        return self.greeting and self.user_turns == 1

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=int(self.duration))


def format_time(moment: datetime) -> str:
    """``moment`` as the exports write it; %-formatting is more than twice as fast as ``strftime``."""
    return _TIME_FORMAT % (moment.day, moment.month, moment.year, moment.hour, moment.minute, moment.second)


def plan_session(rng: random.Random, start: datetime, languages: Weighted[str]) -> SessionPlan:
    """Decide one session: its id, language, topic, length, escalation, HR referral and timing."""
    # A version-4 UUID, formatted by hand: uuid.UUID costs as much as the rest of the row.
    bits = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(bits[16], 16) & 3]
    session_id = f"{bits[:8]}-{bits[8:12]}-4{bits[13:16]}-{variant}{bits[17:20]}-{bits[20:]}"
    book = PHRASEBOOKS[languages.pick(rng)]
    topic = _TOPICS.pick(rng)
    user_turns = _USER_TURNS.pick(rng)
    if user_turns == 1 and rng.random() < _GREETING_ONLY_CHANCE:
        topic, greeting, escalated, forwarded_hr = "UNRECOGNIZED_OTHER", True, False, False
    else:
        greeting = rng.random() < _GREETING_CHANCE
        escalated = rng.random() < _ESCALATION_CHANCE
        forwarded_hr = rng.random() < _HR_CHANCE.get(topic, _HR_CHANCE_OTHERWISE)
        # The topic question, a greeting, an escalation and a referral each need a user turn of their own.
        user_turns = max(user_turns, 1 + greeting + escalated + forwarded_hr)
    exchanges = book.topics[topic]
    topic_index = int(rng.random() * len(exchanges))
    opener = choose(rng, book.greetings) if greeting else exchanges[topic_index][0]
    avg_response = rng.uniform(*_REPLY_DELAY)
    pauses = (user_turns - 1) * rng.uniform(*_USER_PAUSE)
    return SessionPlan(
        session_id=session_id,
        start=start,
        language=book.language,
        topic=topic,
        topic_index=topic_index,
        greeting=greeting,
        opener=opener,
        escalated=escalated,
        forwarded_hr=forwarded_hr,
        user_turns=user_turns,
        avg_response=avg_response,
        duration=user_turns * avg_response + pauses,
        transcript_seed=rng.getrandbits(64),
    )


def render_transcript(plan: SessionPlan, hr_email: str) -> str:
    """The session's transcript: ``[DD.MM.YYYY HH:MM:SS] User: ...`` lines; a turn may span several lines."""
    rng = random.Random(plan.transcript_seed)  # noqa: S311  reproducible test data, not a secret
    exchanges = _exchanges(rng, plan, hr_email)
    times = iter(_turn_times(rng, plan))
    lines = []
    for question, answer in exchanges:
        lines.append(f"[{next(times)}] User: {question}")
        lines.append(f"[{next(times)}] Assistant: {answer}")
    return "\n".join(lines) + "\n"


def _exchanges(rng: random.Random, plan: SessionPlan, hr_email: str) -> list[Exchange]:
    book = PHRASEBOOKS[plan.language]
    chat: list[Exchange] = []
    if plan.greeting:
        chat.append((plan.opener, rng.choice(book.greeting_replies)))
        if plan.greeting_only:
            return chat
    topic = book.topics[plan.topic]
    chat.append(topic[plan.topic_index])
    if plan.escalated:
        chat.append(rng.choice(book.escalations))
    if plan.forwarded_hr:
        question, answer = rng.choice(book.hr_referrals)
        chat.append((question, answer.replace("{hr}", hr_email)))

    room = plan.user_turns - len(chat)
    closing = rng.choice(book.closings) if room and rng.random() < _CLOSING_CHANCE else None
    room -= closing is not None
    more = [exchange for index, exchange in enumerate(topic) if index != plan.topic_index]
    rng.shuffle(more)
    followups = list(book.followups)
    rng.shuffle(followups)
    more += followups
    # Long chats run out of distinct follow-ups; people do repeat themselves.
    more += [rng.choice(book.followups) for _ in range(room - len(more))]
    chat += more[:room]
    if closing is not None:
        chat.append(closing)
    return chat


def _turn_times(rng: random.Random, plan: SessionPlan) -> list[str]:
    """Formatted times of all turns, user and assistant alternating, that reproduce the plan's average
    response time and end exactly at its duration."""
    turns = plan.user_turns
    delays = [rng.uniform(0.5, 1.5) for _ in range(turns)]
    pauses = [rng.uniform(0.2, 1.8) for _ in range(turns - 1)]
    delay_scale = plan.avg_response * turns / sum(delays)
    pause_scale = (plan.duration - plan.avg_response * turns) / sum(pauses) if pauses else 0.0
    offsets = []
    moment = 0.0
    for turn in range(turns):
        if turn:
            moment += pauses[turn - 1] * pause_scale
        offsets.append(moment)
        moment += delays[turn] * delay_scale
        offsets.append(moment)
    # Rounding must not push the last reply past the row's end time.
    offsets[-1] = plan.duration
    return [format_time(plan.start + timedelta(seconds=int(offset))) for offset in offsets]
