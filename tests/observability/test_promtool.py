"""Prometheus's own checker on our files, when it is installed: the configuration and the rules load, the
alert unit tests pass, and every dashboard query is valid PromQL.

promtool is not a Python package; these tests skip without it (say so in the run's summary, never pass).
Point ``PROMTOOL`` at it, or put it on PATH (Debian: the `prometheus` package ships /usr/bin/promtool).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.artifacts import (
    ALERT_RULE_TESTS,
    ALERT_RULES,
    PROMETHEUS_CONFIG,
    dashboard_expressions,
    load_yaml,
)

#: What Grafana's built-in variables stand for when a dashboard query is checked outside Grafana.
BUILTIN_VALUES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed (set PROMTOOL or put it on PATH)")
    return found


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_prometheus_configuration(promtool: str, tmp_path: Path) -> None:
    # Given prometheus.yml with its rules file path pointed at the repository's file (what compose mounts)
    config = load_yaml(PROMETHEUS_CONFIG)
    config["rule_files"] = [str(ALERT_RULES)]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config), encoding="utf-8")

    # When promtool checks it
    result = _run(promtool, "check", "config", str(checked))

    # Then the configuration and the rules it loads are valid
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    # Given the rules file
    # When promtool checks it
    result = _run(promtool, "check", "rules", str(ALERT_RULES))

    # Then every rule parses
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    # Given alerts.test.yml: synthetic series and the alerts (labels, rendered annotations) expected of them
    # When promtool runs it
    result = _run(promtool, "test", "rules", str(ALERT_RULE_TESTS))

    # Then every alert fires when, and only when, it should
    assert result.returncode == 0, result.stdout + result.stderr


def _without_variables(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return BUILTIN_VALUES.get(name, "x")

    return _VARIABLE.sub(value, expr)


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    # Given every dashboard query, its Grafana variables replaced by values, as recording rules
    expressions = dashboard_expressions()
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": _without_variables(expression.expr)}
                    for index, expression in enumerate(expressions)
                ],
            }
        ]
    }
    checked = tmp_path / "dashboard-queries.yml"
    checked.write_text(yaml.safe_dump(rules), encoding="utf-8")

    # When promtool checks them
    result = _run(promtool, "check", "rules", str(checked))

    # Then each one parses (the output names the rule number: dashboard:query_N is expressions[N])
    where = "\n".join(f"query_{index}: {expression.where}" for index, expression in enumerate(expressions))
    assert result.returncode == 0, result.stdout + result.stderr + "\n" + where
