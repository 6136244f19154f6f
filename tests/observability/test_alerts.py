"""The alert rules: each says what happened and links to its runbook in docs/alerts.md, which describes
exactly the alerts there are."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.observability.artifacts import ALERT_RULE_TESTS, ALERTS_DOC, alert_rules, load_yaml

SEVERITIES = {"critical", "warning", "info"}
_RUNBOOK = re.compile(r"^docs/alerts\.md#(?P<anchor>[a-z0-9-]+)$")


def _alerts() -> list[Any]:
    return [rule for rule in alert_rules() if "alert" in rule]


def _slug(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(markdown: str) -> list[tuple[int, str]]:
    """(level, text) of every ATX heading outside fenced code blocks."""
    headings = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)):
            headings.append((len(match[1]), match[2]))
    return headings


def _alert_names() -> list[str]:
    return [rule["alert"] for rule in _alerts()]


def test_alert_names_are_unique() -> None:
    # Given the alert names
    names = _alert_names()

    # Then none repeats (a runbook anchor names one alert)
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("alert", _alert_names())
def test_an_alert_has_a_severity_a_summary_a_description_and_a_runbook(alert: str) -> None:
    # Given the alert
    rule = next(rule for rule in _alerts() if rule["alert"] == alert)

    # When its labels and annotations are read
    labels = rule.get("labels", {})
    annotations = rule.get("annotations", {})

    # Then it has a known severity, says what happened, and links to a runbook anchor of docs/alerts.md
    assert labels.get("severity") in SEVERITIES
    assert str(annotations.get("summary", "")).strip()
    assert str(annotations.get("description", "")).strip()
    assert _RUNBOOK.match(str(annotations.get("runbook", ""))), annotations.get("runbook")


def test_every_runbook_anchor_exists_in_docs_alerts() -> None:
    # Given the anchors of every heading of docs/alerts.md
    anchors = {_slug(text) for _, text in _headings(ALERTS_DOC.read_text(encoding="utf-8"))}

    # When every alert's runbook anchor is looked up
    missing = []
    for rule in _alerts():
        match = _RUNBOOK.match(str(rule.get("annotations", {}).get("runbook", "")))
        if match is None or match["anchor"] not in anchors:
            missing.append((rule["alert"], rule.get("annotations", {}).get("runbook")))

    # Then each leads to a heading (the alert's own: its name in lower case)
    assert not missing, f"runbooks without their heading in docs/alerts.md: {missing}"
    for rule in _alerts():
        assert rule["annotations"]["runbook"] == f"docs/alerts.md#{rule['alert'].lower()}"


def test_docs_alerts_describes_exactly_the_alerts_there_are() -> None:
    # Given the alert headings of docs/alerts.md: level 3, a single CamelCase word
    documented = [
        text
        for level, text in _headings(ALERTS_DOC.read_text(encoding="utf-8"))
        if level == 3 and re.fullmatch(r"[A-Z][A-Za-z0-9]+", text)
    ]

    # Then each alert has one, and none describes an alert that does not exist
    assert sorted(documented) == sorted(_alert_names())


def test_docs_alerts_explains_the_dashboards() -> None:
    # Given docs/alerts.md, which both dashboards link to
    anchors = {_slug(text) for _, text in _headings(ALERTS_DOC.read_text(encoding="utf-8"))}

    # Then it has the section they link to
    assert "reading-the-dashboards" in anchors


def test_every_alert_has_a_unit_test_in_which_it_fires() -> None:
    # Given the promtool unit tests of the rules (run by test_promtool.py)
    tests = load_yaml(ALERT_RULE_TESTS)

    # When the alerts that some test expects to fire are collected
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }

    # Then every alert is among them, and the tests load the rules file beside them
    assert tests["rule_files"] == ["alerts.yml"]
    assert set(_alert_names()) <= tested, sorted(set(_alert_names()) - tested)
