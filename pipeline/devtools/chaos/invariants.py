"""What must hold after any run once it is quiet, faults or not, read from the database, the emulator's
ledger and the dead-letter queues.

* every good session analysed, none lost (each imported, normalised and analysed exactly once);
* nothing stored twice: session imports, sessions, messages, questions, a session's questions, or more
  than one successful analysis of one session;
* batch mode: no answer billed twice (by batch line and by session);
* sync mode: re-billed answers at most the calls interrupted while in flight (counted by the harness);
* every dead letter accounted for: the poison message, dead-lettered by the broker's delivery limit, and
  any other one whose work was done anyway (the sweeps sent it again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Engine, text

from pipeline.dead_letters import DELIVERY_LIMIT_ERROR, DeadLetter
from pipeline.devtools.openai_emulator import LedgerEntry
from pipeline.devtools.poison import POISON_ACTOR

__all__ = ["DUPLICATES", "Findings", "check_invariants"]

#: What is stored at most once → SQL counting the keys stored more than once.
DUPLICATES = {
    "session imports": "SELECT count(*) FROM (SELECT 1 FROM session_import "
    "GROUP BY company_id, external_session_id HAVING count(*) > 1) AS twice",
    "sessions": "SELECT count(*) FROM (SELECT 1 FROM session WHERE import_id IS NOT NULL "
    "GROUP BY import_id HAVING count(*) > 1) AS twice",
    "messages": 'SELECT count(*) FROM (SELECT 1 FROM message GROUP BY session_id, "order" '
    "HAVING count(*) > 1) AS twice",
    "questions": "SELECT count(*) FROM (SELECT 1 FROM question GROUP BY content "
    "HAVING count(*) > 1) AS twice",
    "session questions": "SELECT count(*) FROM (SELECT 1 FROM session_question "
    "GROUP BY session_id, question_id HAVING count(*) > 1) AS twice",
    "analyses": "SELECT count(*) FROM (SELECT 1 FROM ai_processing_request WHERE success "
    "GROUP BY session_id HAVING count(*) > 1) AS twice",
}

_COUNTS = {
    "imported": "SELECT count(*) FROM session_import",
    "sessions": "SELECT count(*) FROM session",
    "analysed": "SELECT count(*) FROM session_processing_status "
    "WHERE stage = 'AI_ANALYSIS' AND status = 'COMPLETED'",
    "failed": "SELECT count(*) FROM session_processing_status WHERE status = 'FAILED'",
}


@dataclass
class Findings:
    """The figures read after a run, and every invariant they break (none: the run kept its promises)."""

    good_sessions: int
    counts: dict[str, int]
    duplicates: dict[str, int]
    batch_billed_twice: int
    rebilled: int
    interrupted_calls: int
    dead_letters: list[DeadLetter]
    violations: list[str] = field(default_factory=list)
    #: For a few sessions billed more than once: what the database kept of them, to tell why.
    rebilled_details: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        letters = Counter(f"{letter.queue} {letter.actor}: {letter.error}" for letter in self.dead_letters)
        return [
            f"good sessions {self.good_sessions}: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()),
            "stored twice: " + ", ".join(f"{k} {v}" for k, v in self.duplicates.items()),
            f"batch answers billed twice: {self.batch_billed_twice}",
            f"re-billed answers: {self.rebilled} (calls interrupted in flight: {self.interrupted_calls})",
            *(f"  {detail}" for detail in self.rebilled_details),
            f"dead letters: {len(self.dead_letters)}" + "".join(f"\n  {n} x {k}" for k, n in letters.items()),
            "violations: " + ("none" if not self.violations else "\n  " + "\n  ".join(self.violations)),
        ]


def _scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def _billed_twice(entries: Iterable[LedgerEntry], key: Literal["custom_id", "session_id"]) -> int:
    counts = Counter(getattr(entry, key) for entry in entries)
    return sum(count - 1 for value, count in counts.items() if value is not None and count > 1)


#: A session billed more than once: its analysis's claims and latest claim, and the calls recorded for it.
_REBILLED_DETAIL = text(
    "SELECT p.attempts, p.started_at, p.completed_at, count(r.id), count(r.id) FILTER (WHERE r.success),"
    " string_agg(to_char(r.requested_at, 'HH24:MI:SS') || ' ' || coalesce(left(r.error_message, 40), 'ok'),"
    " '; ' ORDER BY r.requested_at)"
    " FROM session_processing_status p LEFT JOIN ai_processing_request r ON r.session_id = p.session_id"
    " WHERE p.stage = 'AI_ANALYSIS' AND p.session_id = CAST(:session_id AS uuid)"
    " GROUP BY p.attempts, p.started_at, p.completed_at"
)


def _rebilled_details(engine: Engine, chat: list[LedgerEntry], limit: int = 10) -> list[str]:
    counts = Counter(entry.session_id for entry in chat if entry.session_id is not None)
    details = []
    with engine.connect() as connection:
        for session_id, billed in [(s, n) for s, n in counts.items() if n > 1][:limit]:
            row = connection.execute(_REBILLED_DETAIL, {"session_id": session_id}).first()
            if row is None:
                details.append(f"session {session_id}: billed {billed} times, no analysis row")
                continue
            claims, claimed_at, completed_at, recorded, answered, calls = row
            details.append(
                f"session {session_id}: billed {billed} times, {claims} claims (last at {claimed_at}, "
                f"completed at {completed_at}), {recorded} calls recorded ({answered} answered): {calls}"
            )
    return details


def check_invariants(
    engine: Engine,
    *,
    good_sessions: int,
    mode: Literal["batch", "sync"],
    ledger: list[LedgerEntry],
    dead_letters: list[DeadLetter],
    interrupted_calls: int,
    poison_sent: bool,
) -> Findings:
    counts = {name: _scalar(engine, sql) for name, sql in _COUNTS.items()}
    duplicates = {name: _scalar(engine, sql) for name, sql in DUPLICATES.items()}
    batch = [entry for entry in ledger if entry.kind == "batch"]
    chat = [entry for entry in ledger if entry.kind == "chat"]
    findings = Findings(
        good_sessions=good_sessions,
        counts=counts,
        duplicates=duplicates,
        batch_billed_twice=max(_billed_twice(batch, "custom_id"), _billed_twice(batch, "session_id")),
        rebilled=_billed_twice(chat, "session_id"),
        interrupted_calls=interrupted_calls,
        dead_letters=dead_letters,
    )
    if findings.rebilled:
        findings.rebilled_details = _rebilled_details(engine, chat)
    problems = findings.violations
    for name in ("imported", "sessions", "analysed"):
        if counts[name] != good_sessions:
            problems.append(f"{counts[name]} {name}, expected {good_sessions}")
    problems += [f"{n} {name} stored twice" for name, n in duplicates.items() if n]
    if findings.batch_billed_twice:
        problems.append(f"{findings.batch_billed_twice} batch answers billed twice")
    if mode == "batch" and chat:
        problems.append(f"{len(chat)} chat completions billed in batch mode")
    if findings.rebilled > interrupted_calls:
        problems.append(
            f"{findings.rebilled} answers re-billed, more than the {interrupted_calls} interrupted calls"
        )
    problems += _unaccounted(dead_letters, poison_sent, all_done=counts["analysed"] == good_sessions)
    return findings


def _unaccounted(letters: list[DeadLetter], poison_sent: bool, *, all_done: bool) -> list[str]:
    poison = [letter for letter in letters if letter.actor == POISON_ACTOR]
    problems = []
    if poison_sent and [letter.error for letter in poison] != [DELIVERY_LIMIT_ERROR]:
        problems.append(f"the poison message was not dead-lettered once by its delivery limit: {poison}")
    others = [letter for letter in letters if letter.actor != POISON_ACTOR]
    if others and not all_done:
        problems.append(f"{len(others)} dead letters whose work is not done: {others[:3]}")
    return problems
