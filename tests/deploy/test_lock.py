"""The locks: every distribution pinned with its hashes, every pin of pyproject.toml at the same version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: ``name==version`` at the start of an entry; its ``--hash=`` lines follow.
ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?P<hashes>(?: \\\n\s+--hash=\S+)*)", re.M
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    """``name[extras]==version`` requirements by canonical name."""
    found = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        found[canonical(name.split("[")[0])] = version.strip()
    return found


def locked(path: str) -> dict[str, tuple[str, int]]:
    """The lock's entries: canonical name → (version, number of hashes)."""
    text = (REPO / path).read_text()
    return {
        canonical(match["name"]): (match["version"], match["hashes"].count("--hash=sha256:"))
        for match in ENTRY.finditer(text)
    }


RUNTIME = pins(PYPROJECT["project"]["dependencies"])
TEST = pins(PYPROJECT["project"]["optional-dependencies"]["test"])


@pytest.mark.parametrize(
    ("lock", "required"),
    [("requirements.lock", RUNTIME), ("requirements-test.lock", {**RUNTIME, **TEST})],
    ids=["runtime", "test"],
)
def test_the_lock_holds_every_pin_of_pyproject_at_its_version(lock: str, required: dict[str, str]) -> None:
    entries = locked(lock)
    for name, version in required.items():
        assert name in entries, f"{name} is pinned in pyproject.toml but missing from {lock}: run `make lock`"
        assert entries[name][0] == version, f"{name}: pyproject.toml {version}, {lock} {entries[name][0]}"


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-test.lock", "requirements-pip.lock"])
def test_every_locked_distribution_has_its_hashes(lock: str) -> None:
    text = (REPO / lock).read_text()
    entries = locked(lock)
    # Every requirement line of the file is an entry (nothing unpinned slipped in), each with a hash
    requirement_lines = [
        line for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"
    ]
    assert len(requirement_lines) == len(entries)
    assert all(hashes >= 1 for _version, hashes in entries.values())


def test_the_image_lock_is_the_test_lock_less_the_test_tools() -> None:
    runtime, test = locked("requirements.lock"), locked("requirements-test.lock")
    assert {name: entry[0] for name, entry in runtime.items()} == {name: test[name][0] for name in runtime}
