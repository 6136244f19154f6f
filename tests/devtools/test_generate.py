"""The demo data generator: deterministic, in the exact export formats, varied, and streaming."""

from __future__ import annotations

import csv
import re
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.devtools.chat import PHRASEBOOKS
from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.manifest import DatasetManifest, load_manifest
from pipeline.devtools.phrasebook import CATEGORIES

BASE_URL = "http://demo.test:9000"
EXPORT_TIME = re.compile(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}")
TURN = re.compile(r"\[(\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2})\] (User|Assistant): (.*)")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass
class Turn:
    time: datetime
    role: str
    text: str


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%d.%m.%Y %H:%M:%S")


def parse_transcript(text: str) -> list[Turn]:
    """Turns of a transcript; a line without a ``[time] Role:`` prefix continues the turn before it."""
    turns: list[Turn] = []
    for line in text.splitlines():
        match = TURN.fullmatch(line)
        if match:
            turns.append(Turn(parse_time(match[1]), match[2], match[3]))
        else:
            turns[-1].text += "\n" + line
    return turns


def read_rows(directory: Path, slug: str) -> list[list[str]]:
    with (directory / slug / "sessions.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def all_files(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@dataclass
class Session:
    slug: str
    row: list[str]
    turns: list[Turn]


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DatasetManifest]:
    """A data set big enough to show the generator's variety."""
    directory = tmp_path_factory.mktemp("varied")
    return directory, generate_dataset(directory, companies=4, sessions=500, seed=5, base_url=BASE_URL)


def sessions_of(directory: Path, manifest: DatasetManifest) -> Iterator[Session]:
    for company in manifest.companies:
        for row in read_rows(directory, company.slug):
            transcript = directory / company.slug / "transcripts" / f"{row[0]}.txt"
            yield Session(company.slug, row, parse_transcript(transcript.read_text(encoding="utf-8")))


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    # Given two runs with the same seed into different directories
    generate_dataset(tmp_path / "a", companies=3, sessions=60, seed=42)
    generate_dataset(tmp_path / "b", companies=3, sessions=60, seed=42)

    # Then every file, manifest and transcripts included, is byte for byte the same
    first, second = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert len(first) == 1 + 3 + 3 * 60
    assert first == second


def test_a_different_seed_writes_different_sessions_and_passwords(tmp_path: Path) -> None:
    # Given two runs that differ only in their seed
    one = generate_dataset(tmp_path / "a", companies=2, sessions=20, seed=1)
    two = generate_dataset(tmp_path / "b", companies=2, sessions=20, seed=2)

    # Then the session ids and the credentials differ
    ids_one = {row[0] for company in one.companies for row in read_rows(tmp_path / "a", company.slug)}
    ids_two = {row[0] for company in two.companies for row in read_rows(tmp_path / "b", company.slug)}
    assert ids_one.isdisjoint(ids_two)
    assert {c.password for c in one.companies}.isdisjoint({c.password for c in two.companies})


def test_a_csv_only_run_writes_the_same_csv_as_a_full_run(tmp_path: Path) -> None:
    # Given a run with transcripts and one without, same seed
    full = generate_dataset(tmp_path / "full", companies=2, sessions=50, seed=3)
    generate_dataset(tmp_path / "csv", companies=2, sessions=50, seed=3, transcripts=False)

    # Then the CSVs are identical and the CSV-only run wrote no transcripts
    for company in full.companies:
        csv_path = Path(company.csv_path)
        assert (tmp_path / "full" / csv_path).read_bytes() == (tmp_path / "csv" / csv_path).read_bytes()
        assert not (tmp_path / "csv" / company.slug / "transcripts").exists()
    assert load_manifest(tmp_path / "csv").transcripts is False


def test_a_bigger_run_extends_a_smaller_one_like_a_growing_export(tmp_path: Path) -> None:
    # Given a small run and a bigger one (more companies, more sessions) with the same seed
    small = generate_dataset(tmp_path / "small", companies=2, sessions=30, seed=9, transcripts=False)
    big = generate_dataset(tmp_path / "big", companies=3, sessions=80, seed=9, transcripts=False)

    # Then the big run starts with the small run's companies, and their CSVs start with the small run's rows
    assert [c.slug for c in big.companies[:2]] == [c.slug for c in small.companies]
    for company in small.companies:
        assert read_rows(tmp_path / "big", company.slug)[:30] == read_rows(tmp_path / "small", company.slug)


def test_every_row_has_the_16_export_columns(tmp_path: Path) -> None:
    # Given a data set
    manifest = generate_dataset(tmp_path, companies=2, sessions=300, seed=4, base_url=BASE_URL + "/")

    for company in manifest.companies:
        rows = read_rows(tmp_path, company.slug)
        # Then each company's CSV has one headerless row per session
        assert len(rows) == company.sessions == 300
        for row in rows:
            session_id, start, end = row[:3]
            # And each row has exactly 16 columns: a UUID, export times with end >= start, ...
            assert len(row) == 16
            assert UUID4.fullmatch(session_id)
            assert EXPORT_TIME.fullmatch(start) and EXPORT_TIME.fullmatch(end)
            assert parse_time(end) >= parse_time(start)
            # ... a positive messagesSent and the transcript URL under the base URL, without a doubled slash
            assert int(row[6]) >= 1
            assert row[10] == f"{BASE_URL}/{company.slug}/transcripts/{session_id}.txt"
            # ... and numbers where the export has them
            if row[12]:
                assert float(row[11]) > 0 and int(row[12]) > 0 and float(row[13]) > 0
        ids = [row[0] for row in rows]
        assert len(set(ids)) == len(ids)


def test_every_transcript_agrees_with_its_row(varied: tuple[Path, DatasetManifest]) -> None:
    # Given a generated data set
    directory, manifest = varied

    for session in sessions_of(directory, manifest):
        row, turns = session.row, session.turns
        start, end = parse_time(row[1]), parse_time(row[2])
        # Then the transcript alternates User and Assistant, starting with the user
        assert [turn.role for turn in turns] == ["User", "Assistant"] * (len(turns) // 2)
        # And messagesSent is the number of user turns
        assert int(row[6]) == sum(turn.role == "User" for turn in turns)
        # And the turns happen in order, between the row's start and end, the last one exactly at the end
        times = [turn.time for turn in turns]
        assert times == sorted(times)
        assert times[0] == start and times[-1] == end
        # And the initial message is the first user turn
        assert row[15] == turns[0].text


def test_the_manifest_describes_each_company(tmp_path: Path) -> None:
    # Given a data set with more companies than there are company profiles
    manifest = generate_dataset(tmp_path, companies=10, sessions=2, seed=8, base_url=BASE_URL)

    # Then manifest.json holds what generate_dataset returned
    assert load_manifest(tmp_path) == manifest
    assert (manifest.seed, manifest.base_url, manifest.transcripts) == (8, BASE_URL, True)

    # And every company has a unique slug, credentials, a real time zone, a region and its CSV's URL and path
    assert len({company.slug for company in manifest.companies}) == 10
    for company in manifest.companies:
        assert company.username and len(company.password) >= 16
        assert ZoneInfo(company.timezone)
        assert company.region in {"eu", "us"}
        assert company.csv_url == f"{BASE_URL}/{company.slug}/sessions.csv"
        assert (tmp_path / company.csv_path).is_file()
        assert company.sessions == 2

    # And the time zones vary
    assert len({company.timezone for company in manifest.companies}) >= 5


def test_rows_vary_like_a_real_export(varied: tuple[Path, DatasetManifest]) -> None:
    # Given a generated data set
    directory, manifest = varied
    rows = [row for company in manifest.companies for row in read_rows(directory, company.slug)]
    column = {index: [row[index] for row in rows] for index in range(16)}

    # Then languages come as free text in several spellings, and are sometimes missing
    assert {"english", "dutch", "german", "turkish"} <= {value.lower() for value in column[5]}
    assert {"Dutch", "dutch"} <= set(column[5])
    # And the vendor's categories, sentiments and flags appear, each sometimes empty
    assert {"Greeting", "Onboarding", "Language inquiry", "General", "Schedule", "Salary"} <= set(column[14])
    assert {"happy", "excited", "neutral", "angry", "frustrated"} <= set(column[7])
    assert {"yes", "no"} <= set(column[8]) and {"yes", "no"} <= set(column[9])
    for index in (3, 4, 5, 7, 8, 9, 14):
        assert "" in column[index], f"column {index} is never empty"
    # And addresses are mostly IPv4, sometimes IPv6; countries mostly alpha-2, sometimes a name
    assert sum(bool(re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", ip)) for ip in column[3]) > len(rows) * 0.8
    assert any(":" in ip for ip in column[3])
    assert sum(bool(re.fullmatch(r"[A-Z]{2}", code)) for code in column[4]) > len(rows) * 0.9
    assert any(len(code) > 3 for code in column[4])
    # And response times stay within the sample's range
    assert all(1.487 <= float(value) <= 3.977 for value in column[11] if value)


def test_initial_messages_need_csv_quoting(varied: tuple[Path, DatasetManifest]) -> None:
    # Given a generated data set
    directory, manifest = varied
    messages = [row[15] for company in manifest.companies for row in read_rows(directory, company.slug)]
    raw = "".join(
        (directory / company.csv_path).read_text(encoding="utf-8") for company in manifest.companies
    )

    # Then some initial messages hold commas, double quotes and line breaks, and the file quotes them
    assert any("," in message for message in messages)
    assert any('"' in message for message in messages)
    assert any("\n" in message for message in messages)
    assert '""' in raw
    assert raw.count("\n") > len(messages)


def test_transcripts_span_topics_languages_escalations_and_hr(varied: tuple[Path, DatasetManifest]) -> None:
    # Given a generated data set, and which topic and language each known question belongs to
    directory, manifest = varied
    topic_of = {
        question: topic
        for book in PHRASEBOOKS.values()
        for topic, exchanges in book.topics.items()
        for question, _ in exchanges
    }
    language_of = {
        question: book.language
        for book in PHRASEBOOKS.values()
        for exchanges in book.topics.values()
        for question, _ in exchanges
    }
    escalations = {question for book in PHRASEBOOKS.values() for question, _ in book.escalations}

    topics, languages, multi_line = set(), set(), 0
    for session in sessions_of(directory, manifest):
        user_texts = [turn.text for turn in session.turns if turn.role == "User"]
        topics |= {topic_of[text] for text in user_texts if text in topic_of}
        languages |= {language_of[text] for text in user_texts if text in language_of}
        multi_line += any("\n" in turn.text for turn in session.turns)
        # Then a row marked escalated has the user asking for a manager
        if session.row[8] == "yes":
            assert escalations & set(user_texts)
        # And a row marked forwarded to HR has the assistant giving the company's HR address
        if session.row[9] == "yes":
            assert any(f"hr@{session.slug}.example" in turn.text for turn in session.turns)

    # And the chats span all 13 categories and four languages, some with turns over several lines
    assert topics == set(CATEGORIES)
    assert languages == {"en", "nl", "de", "tr"}
    assert multi_line > 0


def peak_traced_memory(directory: Path, sessions: int) -> int:
    tracemalloc.start()
    try:
        generate_dataset(directory, companies=1, sessions=sessions, transcripts=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_run_streams_in_memory_that_does_not_grow_with_the_sessions(tmp_path: Path) -> None:
    # Given a CSV-only run of 5,000 sessions and one ten times as large, traced for memory
    # (tracemalloc slows allocation several times over, so the large run stays at 50,000 rows)
    small = peak_traced_memory(tmp_path / "small", 5_000)

    # When the large run is generated
    large = peak_traced_memory(tmp_path / "large", 50_000)

    # Then its peak is small, and no bigger than the small run's but for noise; holding the rows would take
    # tens of megabytes
    assert large < 20 * 1024 * 1024
    assert large - small < 1024 * 1024
    assert len(read_rows(tmp_path / "large", load_manifest(tmp_path / "large").companies[0].slug)) == 50_000


def test_negative_counts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        generate_dataset(tmp_path, companies=1, sessions=-1)
