"""The demo data generator: company CSVs and transcripts, deterministic for a seed and written as a stream.

Layout of a data set directory::

    manifest.json                       companies, credentials, URLs (see pipeline.devtools.manifest)
    <slug>/sessions.csv                 headerless, 16 positional columns, as a company serves it
    <slug>/transcripts/<session id>.txt one per CSV row, unless generated without transcripts

Each company draws from its own random stream, seeded by the data set seed and the company's position. So
a data set with more companies contains the smaller one, and a company with more sessions starts with the rows
of the smaller run: a growing export, which is what an incremental import sees. Rows are written one at a time
and nothing accumulates, so memory stays flat however many sessions are asked for.
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.devtools.chat import plan_session, render_transcript
from pipeline.devtools.manifest import CompanyManifest, DatasetManifest, load_manifest, write_manifest
from pipeline.devtools.profiles import PROFILES, CompanyProfile
from pipeline.devtools.rows import RowMaker
from pipeline.devtools.weighted import Weighted

__all__ = ["DEFAULT_BASE_URL", "CompanyManifest", "DatasetManifest", "generate_dataset", "load_manifest"]

DEFAULT_BASE_URL = "http://127.0.0.1:8765"

_FIRST_DAY = datetime(2025, 5, 1)
#: Chats start between 07:00 and 22:30 local time; see pipeline.devtools.profiles for why that matters.
_DAY_OPENS = 7 * 3600
_DAY_CLOSES = 22 * 3600 + 30 * 60
_PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"  # noqa: S105  an alphabet
_PROGRESS_EVERY = 1000
_WRITE_BUFFER = 1 << 20


def generate_dataset(
    out_dir: Path,
    *,
    companies: int,
    sessions: int,
    seed: int = 0,
    base_url: str = DEFAULT_BASE_URL,
    transcripts: bool = True,
    progress: Callable[[int], None] | None = None,
) -> DatasetManifest:
    """Write a data set of ``companies`` companies with ``sessions`` sessions each into ``out_dir``.

    Files of an earlier data set in ``out_dir`` are overwritten; the manifest names what belongs to this one.
    ``progress``, if given, is called now and then with the number of rows written since its last call.
    """
    if companies < 0 or sessions < 0:
        raise ValueError("companies and sessions must not be negative")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_url = base_url.rstrip("/")
    entries = tuple(
        _write_company(
            out_dir,
            index,
            seed=seed,
            sessions=sessions,
            base_url=base_url,
            transcripts=transcripts,
            progress=progress,
        )
        for index in range(companies)
    )
    manifest = DatasetManifest(seed=seed, base_url=base_url, transcripts=transcripts, companies=entries)
    write_manifest(out_dir, manifest)
    return manifest


def _write_company(
    out_dir: Path,
    index: int,
    *,
    seed: int,
    sessions: int,
    base_url: str,
    transcripts: bool,
    progress: Callable[[int], None] | None,
) -> CompanyManifest:
    profile, name, slug = _identity(seed, index)
    # A string seed is hashed with SHA-512, so the stream is the same in every process and on every platform.
    # Reproducible on purpose: the demo data set's source passwords are derived from its seed.
    rng = random.Random(f"livedash-demo:{seed}:{index}")  # noqa: S311
    password = "".join(rng.choices(_PASSWORD_ALPHABET, k=20))
    rows = RowMaker(profile, rng)
    languages = Weighted(profile.languages)
    clock = _Clock(profile.daily_sessions)
    hr_email = f"hr@{slug}.example"
    transcript_url = f"{base_url}/{slug}/transcripts/"

    company_dir = out_dir / slug
    transcript_dir = company_dir / "transcripts"
    (transcript_dir if transcripts else company_dir).mkdir(parents=True, exist_ok=True)
    csv_path = company_dir / "sessions.csv"
    partial = csv_path.with_name(csv_path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="", buffering=_WRITE_BUFFER) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for written in range(1, sessions + 1):
            plan = plan_session(rng, clock.tick(rng), languages)
            writer.writerow(rows.row(rng, plan, f"{transcript_url}{plan.session_id}.txt"))
            if transcripts:
                (transcript_dir / f"{plan.session_id}.txt").write_text(
                    render_transcript(plan, hr_email), encoding="utf-8", newline=""
                )
            if progress is not None and written % _PROGRESS_EVERY == 0:
                progress(_PROGRESS_EVERY)
    # The server may be serving the previous file; a rename swaps it whole.
    os.replace(partial, csv_path)
    if progress is not None and sessions % _PROGRESS_EVERY:
        progress(sessions % _PROGRESS_EVERY)

    return CompanyManifest(
        slug=slug,
        name=name,
        username=slug,
        password=password,
        timezone=profile.timezone,
        region=profile.region,
        csv_url=f"{base_url}/{slug}/sessions.csv",
        csv_path=csv_path.relative_to(out_dir).as_posix(),
        sessions=sessions,
    )


def _identity(seed: int, index: int) -> tuple[CompanyProfile, str, str]:
    """The company at this position: profiles rotate from a seed-chosen start, then repeat with a number."""
    first = random.Random(f"livedash-demo:{seed}").randrange(len(PROFILES))  # noqa: S311  test data
    profile = PROFILES[(first + index) % len(PROFILES)]
    lap = index // len(PROFILES)
    name = profile.name if lap == 0 else f"{profile.name} {lap + 1}"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return profile, name, slug


class _Clock:
    """Session start times: a Poisson stream during opening hours, day after day from 1 May 2025."""

    __slots__ = ("_day", "_mean_gap", "_second")

    def __init__(self, daily_sessions: int) -> None:
        self._mean_gap = (_DAY_CLOSES - _DAY_OPENS) / daily_sessions
        self._day = 0
        self._second = float(_DAY_OPENS)

    def tick(self, rng: random.Random) -> datetime:
        self._second += rng.expovariate(1 / self._mean_gap)
        while self._second >= _DAY_CLOSES:
            self._day += 1
            self._second -= _DAY_CLOSES - _DAY_OPENS
        return _FIRST_DAY + timedelta(days=self._day, seconds=int(self._second))
