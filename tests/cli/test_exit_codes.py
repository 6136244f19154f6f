"""The exit codes are documented where operators read them, all of them and only them."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.cli.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]


def test_operations_and_readme_document_every_exit_code() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = operations.split("## The `livedash` command line", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)}
    assert documented == set(EXIT_CODES)

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    summary = readme.split("Exit codes:", 1)[1].split("Details:", 1)[0]
    assert {int(code) for code in re.findall(r"\b(\d+) ", summary)} == set(EXIT_CODES)
