"""The emulator's stand-in for the model: a deterministic analysis of one chat transcript.

The conversation is the text of the request's user message::

    Session ID: 0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21
    [01.02.2025 10:00:00] User: Hoeveel vakantiedagen heb ik nog?
    [01.02.2025 10:00:03] Assistant: Je verlofsaldo staat in de app.
    Aangevraagde dagen zijn al afgetrokken.

A line starting ``[<timestamp>] <role>:`` opens a turn; any other line continues the turn before it. Before
the first turn only the ``Session ID:`` line counts, so instructions there change nothing. Language,
sentiment, escalation and questions come from what the user wrote, the category from the first user turn that
names a topic; HR counts as mentioned by either side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.devtools.openai_emulator import vocabulary

__all__ = ["Turn", "analyse_conversation", "parse_conversation"]

_TURN = re.compile(r"\[[^\]\n]*\]\s*(?P<role>[^:\n]+?)\s*:[ \t]?(?P<text>.*)")
_SESSION_ID = re.compile(r"\s*session id:\s*(?P<id>\S+)\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?\n]+")
_QUESTION = re.compile(r"[^.!?\n]*\?")
_HR_MARKER = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, vocabulary.HR_MARKERS)) + r")(?!\w)")
_MAX_QUESTIONS = 5
_FALLBACK_LANGUAGE = "en"
_FALLBACK_CATEGORY = "UNRECOGNIZED_OTHER"


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn: ``role`` in lower case (``user``, ``assistant`` ...), ``text`` with continuation lines."""

    role: str
    text: str


class _Keywords:
    """Counts keyword matches in folded text; a phrase match counts double."""

    def __init__(self, keywords: Iterable[str]) -> None:
        words: list[str] = []
        phrases: list[str] = []
        for keyword in keywords:
            (phrases if " " in keyword else words).append(_keyword_pattern(keyword))
        self._words = _alternation(words)
        self._phrases = _alternation(phrases)

    def count(self, folded: str) -> int:
        found = 0
        if self._words is not None:
            found += len(self._words.findall(folded))
        if self._phrases is not None:
            found += 2 * len(self._phrases.findall(folded))
        return found


def _keyword_pattern(keyword: str) -> str:
    parts = []
    for word in keyword.split():
        core = re.escape(word.strip("*"))
        parts.append(("\\w*" if word.startswith("*") else "") + core + ("\\w*" if word.endswith("*") else ""))
    return r"\s+".join(parts)


def _alternation(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(patterns) + r")(?!\w)")


def _table(keywords: Mapping[str, tuple[str, ...]]) -> dict[str, _Keywords]:
    return {name: _Keywords(words) for name, words in keywords.items()}


_LANGUAGES = _table(vocabulary.LANGUAGE_MARKERS)
_CATEGORIES = _table(vocabulary.CATEGORY_KEYWORDS)
_POSITIVE = _Keywords(vocabulary.POSITIVE_WORDS)
_NEGATIVE = _Keywords(vocabulary.NEGATIVE_WORDS)
_AUTHORITIES = _Keywords(vocabulary.ESCALATION_AUTHORITIES)
_SPEAKING = _Keywords(vocabulary.ESCALATION_VERBS)
_ESCALATION = _Keywords(vocabulary.ESCALATION_WORDS)
_HR_PHRASES = _Keywords(vocabulary.HR_PHRASES)


def parse_conversation(text: str) -> tuple[str, list[Turn]]:
    """The session id (empty if there is none) and the turns of a conversation."""
    session_id = ""
    turns: list[Turn] = []
    role = ""
    lines: list[str] = []
    for line in text.splitlines():
        opening = _TURN.fullmatch(line)
        if opening is not None:
            if lines:
                turns.append(Turn(role, "\n".join(lines)))
            role, lines = opening["role"].strip().lower(), [opening["text"]]
        elif lines:
            lines.append(line)
        elif not session_id and (header := _SESSION_ID.fullmatch(line)) is not None:
            session_id = header["id"]
    if lines:
        turns.append(Turn(role, "\n".join(lines)))
    return session_id, turns


def analyse_conversation(text: str) -> dict[str, object]:
    """The analysis the emulator answers for ``text``: the 8 keys of ``SessionAnalysis``, in that order.

    Deterministic: the same text always gives the same answer, so tests compute what to expect with it.
    Questions are kept verbatim (a real model would translate them to English).
    """
    session_id, turns = parse_conversation(text)
    said = [turn.text for turn in turns if turn.role == "user"]
    user_text = _fold("\n".join(said))
    whole_text = "\n".join(turn.text for turn in turns)
    # A user who only said "Hallo" gives no language away; the assistant's answer does.
    language = _best(_LANGUAGES, user_text) or _best(_LANGUAGES, _fold(whole_text)) or _FALLBACK_LANGUAGE
    category = _category(said)
    escalated = _asks_for_escalation(user_text)
    forwarded_hr = _mentions_hr(whole_text)
    return {
        "language": language,
        "sentiment": _sentiment(user_text),
        "escalated": escalated,
        "forwarded_hr": forwarded_hr,
        "category": category,
        "questions": _questions(said),
        "summary": _summary(category, language, len(said), escalated, forwarded_hr),
        "session_id": session_id,
    }


def _fold(text: str) -> str:
    # str.lower() turns the Turkish dotted capital into "i" plus a combining dot, which no keyword contains;
    # and typographic apostrophes ("doesn\u2019t") should match the keywords' plain ones.
    return text.replace("İ", "i").replace("\u2019", "'").lower()


def _best(table: Mapping[str, _Keywords], folded: str) -> str | None:
    """The entry with the most matches, the first in table order on a tie; None if nothing matches."""
    best, best_count = None, 0
    for name, keywords in table.items():
        count = keywords.count(folded)
        if count > best_count:
            best, best_count = name, count
    return best


def _category(said: list[str]) -> str:
    # What the user came for is the first thing they asked about; follow-ups ("is that the same for
    # part-timers?") would otherwise outvote it.
    for text in said:
        category = _best(_CATEGORIES, _fold(text))
        if category is not None:
            return category
    return _FALLBACK_CATEGORY


def _sentiment(folded: str) -> str:
    balance = _POSITIVE.count(folded) - _NEGATIVE.count(folded)
    if balance > 0:
        return "POSITIVE"
    if balance < 0:
        return "NEGATIVE"
    return "NEUTRAL"


def _asks_for_escalation(folded: str) -> bool:
    if _ESCALATION.count(folded):
        return True
    # "My manager says I work" names a manager but asks for nobody; asking means speaking to them.
    return any(
        _AUTHORITIES.count(sentence) and _SPEAKING.count(sentence) for sentence in _SENTENCE_END.split(folded)
    )


def _mentions_hr(text: str) -> bool:
    return _HR_MARKER.search(text) is not None or _HR_PHRASES.count(_fold(text)) > 0


def _questions(said: list[str]) -> list[str]:
    questions: list[str] = []
    for text in said:
        for match in _QUESTION.finditer(text):
            question = " ".join(match.group().split())
            if re.search(r"\w", question) and question not in questions:
                questions.append(question)
                if len(questions) == _MAX_QUESTIONS:
                    return questions
    return questions


def _summary(category: str, language: str, user_turns: int, escalated: bool, forwarded_hr: bool) -> str:
    label = vocabulary.CATEGORY_LABELS[category]
    name = vocabulary.LANGUAGE_NAMES[language]
    parts = [f"User asked about {label} in {name}; {user_turns} user turn{'' if user_turns == 1 else 's'}"]
    if escalated:
        parts.append("asked for a manager")
    if forwarded_hr:
        parts.append("HR was mentioned")
    return "; ".join(parts) + "."
