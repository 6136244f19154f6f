"""The demo data set's deliberate faults: broken rows in one company's CSV, a wrong password for another,
and what the pipeline must end with because of them."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.devtools.manifest import DatasetManifest

__all__ = [
    "BROKEN_ROWS",
    "CLEAN",
    "WRONG_CREDENTIALS",
    "InjectedRow",
    "Scenario",
    "inject_broken_rows",
    "prepare_scenario",
    "read_records",
]

BROKEN_ROWS = "broken rows"
WRONG_CREDENTIALS = "wrong password"
CLEAN = "clean"


@dataclass(frozen=True)
class InjectedRow:
    """A broken row written into a company's CSV: where it is, what is wrong, and the column it must blame."""

    line: int
    problem: str
    column: str


@dataclass(frozen=True)
class Scenario:
    """What the data set was made to contain, and so what the pipeline must end with."""

    roles: dict[str, str]  # company name -> BROKEN_ROWS, WRONG_CREDENTIALS or CLEAN
    injected: list[InjectedRow]
    good_ids: dict[str, frozenset[str]]  # company name -> session ids of its good rows

    @property
    def broken(self) -> str:
        return next(name for name, role in self.roles.items() if role == BROKEN_ROWS)

    @property
    def locked_out(self) -> str:
        return next(name for name, role in self.roles.items() if role == WRONG_CREDENTIALS)

    @property
    def budgeted(self) -> str:
        """The company given a small AI budget, raised once it is reached: a clean one if there is one."""
        return next((name for name, role in self.roles.items() if role == CLEAN), self.broken)

    @property
    def good_rows(self) -> int:
        return sum(len(ids) for name, ids in self.good_ids.items() if self.roles[name] != WRONG_CREDENTIALS)


#: A session id of 300 characters, in a column of at most 255.
_LONG_ID = "broken-row-" + "x" * 289


def _broken_records(template: list[str]) -> list[tuple[list[str], str, str]]:
    """Rows made from a good one that cannot become sessions (a field that merely cannot be read is stored
    as null with a warning, not refused): (record, problem, column blamed)."""
    empty_id = template.copy()
    empty_id[0] = ""
    no_start = template.copy()
    no_start[0], no_start[1] = "broken-row-start-time", ""
    too_long = template.copy()
    too_long[0] = _LONG_ID
    return [
        (empty_id, "empty session id", "column 0 (externalSessionId)"),
        (no_start, "no start time", "column 1 (startTimeRaw)"),
        (too_long, "session id over 255 characters", "column 0 (externalSessionId)"),
    ]


def _csv_text(record: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(record)
    return buffer.getvalue()


def read_records(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def inject_broken_rows(path: Path) -> list[InjectedRow]:
    """Write bad rows into the CSV at ``path``: after its first row, in its middle and at its end.

    The good rows are written back byte for byte (the generator writes with the same csv writer); the line
    numbers are counted on the text written, so a record spanning lines would be counted right.
    """
    good = read_records(path)
    bad = _broken_records(good[0])
    places = (min(1, len(good)), len(good) // 2, len(good))
    pending = sorted(zip(places, bad, strict=True), key=lambda item: item[0])
    injected: list[InjectedRow] = []
    line = 1
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:

        def write(record: list[str]) -> int:
            text = _csv_text(record)
            handle.write(text)
            return text.count("\n")

        for index in range(len(good) + 1):
            while pending and pending[0][0] == index:
                record, problem, column = pending.pop(0)[1]
                injected.append(InjectedRow(line, problem, column))
                line += write(record)
            if index < len(good):
                line += write(good[index])
    os.replace(partial, path)
    return injected


def prepare_scenario(data: Path, manifest: DatasetManifest) -> Scenario:
    """Break the first company's CSV and lock the last company out; return what the run must show."""
    roles = {company.name: CLEAN for company in manifest.companies}
    roles[manifest.companies[0].name] = BROKEN_ROWS
    roles[manifest.companies[-1].name] = WRONG_CREDENTIALS
    good_ids = {
        company.name: frozenset(record[0] for record in read_records(data / company.csv_path))
        for company in manifest.companies
    }
    injected = inject_broken_rows(data / manifest.companies[0].csv_path)
    return Scenario(roles, injected, good_ids)
