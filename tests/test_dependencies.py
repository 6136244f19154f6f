"""Every distribution the code imports is declared in pyproject.toml, so a fresh install can run it.

A library that arrives only as another's dependency (httpx2 through openai, starlette through fastapi) may
change or vanish with that library's next release; importing it means declaring and pinning it. pipeline/
may use only the project's dependencies; bench/ and tests/ may also use the ``test`` extra.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

#: The project's own packages, and ``_typeshed``: the standard library's stubs, for the type checker only.
NOT_DISTRIBUTIONS = {"__future__", "_typeshed", "pipeline", "tests", "bench"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    """The distribution names of PEP 508 requirements, normalized (extras, versions and markers left out)."""
    return {
        _normalized(re.split(r"[\s\[=<>!~;@]", requirement, maxsplit=1)[0]) for requirement in requirements
    }


MAIN = _declared(PROJECT["dependencies"])
TEST = MAIN | _declared(PROJECT["optional-dependencies"]["test"])


def _imported(path: Path) -> Iterator[tuple[int, str]]:
    """Each absolute import of ``path``: its line and top-level module."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def undeclared_imports(folder: str, declared: set[str]) -> list[str]:
    """``file:line module`` for each import in ``folder`` of a module no declared distribution provides."""
    distributions = packages_distributions()
    local = {path.stem for path in (ROOT / folder).glob("*.py")}  # bench/ imports its own modules by name
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in _imported(path):
            if module in sys.stdlib_module_names or module in NOT_DISTRIBUTIONS or module in local:
                continue
            providers = {_normalized(name) for name in distributions.get(module, [])}
            if not providers & declared:
                source = sorted(providers) or "nothing"
                found.append(f"{path.relative_to(ROOT)}:{line} {module} (from {source})")
    return found


@pytest.mark.parametrize(("folder", "declared"), [("pipeline", MAIN), ("bench", TEST), ("tests", TEST)])
def test_every_imported_distribution_is_declared(folder: str, declared: set[str]) -> None:
    assert undeclared_imports(folder, declared) == []


def test_an_undeclared_import_is_found() -> None:
    # Given the declared dependencies without httpx2 (installed all the same, as openai's dependency)
    # When pipeline/ is checked against them
    found = undeclared_imports("pipeline", MAIN - {"httpx2"})

    # Then the import of httpx2 is reported with its file and line
    assert any(
        entry.startswith("pipeline/analysis/openai_calls.py:") for entry in found if " httpx2 " in entry
    )
