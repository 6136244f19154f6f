"""The observability files under test, loaded, and every PromQL query in them with where it stands."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ALERTS_DOC",
    "ALERT_RULES",
    "ALERT_RULE_TESTS",
    "DASHBOARDS_DIR",
    "DASHBOARDS_MOUNT",
    "DASHBOARD_PROVIDERS",
    "DATASOURCES",
    "PROMETHEUS_CONFIG",
    "ROOT",
    "RULES_MOUNT",
    "Expression",
    "alert_rules",
    "all_expressions",
    "dashboard_expressions",
    "dashboards",
    "load_yaml",
    "panels",
    "rule_expressions",
    "template_query_expression",
]

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "observability"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus" / "prometheus.yml"
ALERT_RULES = OBSERVABILITY / "prometheus" / "alerts.yml"
ALERT_RULE_TESTS = OBSERVABILITY / "prometheus" / "alerts.test.yml"
DATASOURCES = OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = OBSERVABILITY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
DASHBOARDS_DIR = OBSERVABILITY / "grafana" / "dashboards"
ALERTS_DOC = ROOT / "docs" / "alerts.md"

#: Where compose (compose/docker-compose.yml) mounts the rules file and the dashboards folder in the
#: Prometheus and Grafana containers.
RULES_MOUNT = "/etc/prometheus/alerts.yml"
DASHBOARDS_MOUNT = "/etc/grafana/dashboards"


@dataclass(frozen=True)
class Expression:
    """A PromQL query and where it stands, for failure messages."""

    where: str
    expr: str


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


@cache
def dashboards() -> dict[str, Any]:
    """Every dashboard JSON by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def panels(dashboard: Any) -> Iterator[Any]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<args>.*)\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.*)\)\s*$", re.DOTALL)
_METRICS = re.compile(r"^\s*metrics\(.*\)\s*$", re.DOTALL)


def template_query_expression(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query, or None when it has none.

    ``label_values(SELECTOR, label)`` holds a selector, ``label_values(label)`` and ``metrics(regex)`` none,
    ``query_result(EXPR)`` an expression; anything else is taken as a plain PromQL query.
    """
    if match := _LABEL_VALUES.match(query):
        selector, _, _label = match["args"].rpartition(",")
        return selector.strip() or None
    if match := _QUERY_RESULT.match(query):
        return match["expr"]
    if _METRICS.match(query):
        return None
    return query


def _variable_query(variable: Any) -> str | None:
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query if isinstance(query, str) and query.strip() else None


def dashboard_expressions() -> list[Expression]:
    """The query of every panel target and of every query variable of every dashboard."""
    found = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    where = f"{name}, panel {panel.get('title')!r}, target {target.get('refId')}"
                    found.append(Expression(where, target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = _variable_query(variable)
            expr = template_query_expression(query) if query else None
            if expr:
                found.append(Expression(f"{name}, variable ${variable.get('name')}", expr))
    return found


def alert_rules() -> list[Any]:
    """Every rule of every group of the rules file."""
    return [rule for group in load_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]


def _rule_name(rule: Any) -> str:
    return f"alert {rule['alert']}" if "alert" in rule else f"record {rule.get('record')}"


def rule_expressions() -> list[Expression]:
    return [Expression(f"alerts.yml, {_rule_name(rule)}", rule["expr"]) for rule in alert_rules()]


def all_expressions() -> list[Expression]:
    return dashboard_expressions() + rule_expressions()
