"""The repository stands alone: no file points outside it, and the system it replaces is named in one page.

Whoever clones the repository has only the repository: a reference to a design folder beside it, or to the
old system's source, is a dead end. The old system is compared where that helps an operator,
``docs/migration-notes.md``, and nowhere else. The complexity limits of ``pipeline/`` hold as configured.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()
MIGRATION_NOTES = "docs/migration-notes.md"

#: References to files beside or above the repository, and to the documents that lived there.
OUTSIDE = re.compile(
    r"\.\./shared|/work/shared|shared/(spec|design|reference)/|\bdomain\.md\b|platform-notes\.md|stack-notes\.md"
    r"|\b(domain|architecture)( spec|\.md)? ?§"
)
#: Talk of the replaced system as "the seed" or "upstream" (seed data and random seeds are fine).
OLD_SYSTEM = re.compile(
    r"\bthe seed\b(?! (data|prices|models))|\bseed's\b|\bthe upstream\b|\bupstream's\b|\bUpstream\b"
)
#: The replaced system by name.
NAMED = re.compile(r"TypeScript|server\.ts|Next\.js|NextAuth|Prisma")


def _tracked_texts() -> dict[str, str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    texts = {}
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or name == THIS_FILE or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" not in data:
            texts[name] = data.decode("utf-8", errors="replace")
    return texts


def _hits(pattern: re.Pattern[str], texts: dict[str, str]) -> list[str]:
    return [
        f"{name}:{number}: {line.strip()}"
        for name, text in texts.items()
        for number, line in enumerate(text.splitlines(), start=1)
        if pattern.search(line)
    ]


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    # Given every file git tracks
    texts = _tracked_texts()
    assert "docs/architecture.md" in texts
    # Then none points at the design folder that lived beside the repository
    assert _hits(OUTSIDE, texts) == []


def test_the_replaced_system_is_named_in_the_migration_notes_only() -> None:
    # Given every tracked file but the migration notes
    texts = _tracked_texts()
    notes = texts.pop(MIGRATION_NOTES)
    # Then none speaks of "the seed" or "upstream", nor names the old system
    assert _hits(OLD_SYSTEM, texts) == []
    assert _hits(NAMED, texts) == []
    # And the migration notes do, with the faults not copied
    assert NAMED.search(notes) and "not copied" in notes


def test_the_patterns_catch_what_they_are_for() -> None:
    assert OUTSIDE.search("see ../shared/design/architecture.md")
    assert OUTSIDE.search("(domain §10 item 13)")
    assert OLD_SYSTEM.search("the seed's paths") and OLD_SYSTEM.search("Upstream stored it twice")
    assert not OLD_SYSTEM.search("seeds the AI models and their seed prices; --seed 0; the seed data")


def test_the_functions_of_pipeline_stay_within_the_complexity_limits() -> None:
    # Given the ruff configuration of pyproject.toml (C901 at 12, PLR0912, PLR0915)
    # When ruff checks pipeline/ for those rules alone
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "pipeline", "--select", "C901,PLR0912,PLR0915"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    # Then nothing is too complex
    assert checked.returncode == 0, checked.stdout
    configured = (ROOT / "pyproject.toml").read_text()
    assert "max-complexity = 12" in configured
