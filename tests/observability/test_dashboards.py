"""The Grafana dashboards and their provisioning: every panel queries the provisioned Prometheus, every
variable a query uses is defined, and Grafana loads the files from where compose mounts them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.observability.artifacts import (
    DASHBOARD_PROVIDERS,
    DASHBOARDS_MOUNT,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    dashboard_expressions,
    dashboards,
    load_yaml,
    panels,
)
from tests.observability.promql import read_query

#: Grafana's built-in variables a query may use without defining them.
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}
#: Grafana's own datasource (the built-in annotation query); not a Prometheus panel.
GRAFANA_BUILTIN_DATASOURCE = "-- Grafana --"


def _provisioned_uids() -> set[str]:
    return {datasource["uid"] for datasource in load_yaml(DATASOURCES)["datasources"]}


def _uid(datasource: Any) -> str | None:
    """The uid a datasource reference names ({"type", "uid"} in schema 39; a bare uid string earlier)."""
    if isinstance(datasource, dict):
        uid = datasource.get("uid")
        return str(uid) if uid is not None else None
    return str(datasource) if datasource is not None else None


def test_there_are_the_two_dashboards() -> None:
    # Given the dashboards folder
    # Then it has the pipeline's dashboard and RabbitMQ's, with distinct uids
    boards = dashboards()
    assert sorted(boards) == ["livedash-pipeline.json", "rabbitmq-overview.json"]
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_and_query_uses_the_provisioned_prometheus(name: str) -> None:
    # Given a dashboard and the provisioned datasources
    board = dashboards()[name]
    provisioned = _provisioned_uids()

    # When the datasource of every panel, panel target and query variable is read
    wrong = []
    for panel in panels(board):
        if panel.get("type") == "row":
            continue
        if _uid(panel.get("datasource")) not in provisioned:
            wrong.append(f"panel {panel.get('title')!r}: {panel.get('datasource')}")
        for target in panel.get("targets", []):
            if "datasource" in target and _uid(target["datasource"]) not in provisioned:
                wrong.append(
                    f"panel {panel.get('title')!r} target {target.get('refId')}: {target['datasource']}"
                )
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and _uid(variable.get("datasource")) not in provisioned:
            wrong.append(f"variable ${variable.get('name')}: {variable.get('datasource')}")
    for annotation in board.get("annotations", {}).get("list", []):
        if _uid(annotation.get("datasource")) not in provisioned | {GRAFANA_BUILTIN_DATASOURCE}:
            wrong.append(f"annotation {annotation.get('name')!r}: {annotation.get('datasource')}")

    # Then each one is a provisioned datasource
    assert not wrong, f"{name}: datasources that are not provisioned ({sorted(provisioned)}): {wrong}"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_a_dashboard_is_well_formed_for_grafana(name: str) -> None:
    # Given a dashboard
    board = dashboards()[name]
    all_panels = list(panels(board))

    # Then it has the current schema, unique panel ids, panels inside the 24-column grid, and a query in each
    # panel that is not a row
    assert 36 <= board["schemaVersion"] <= 41
    assert board["title"] and board["uid"]
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    for panel in all_panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel.get("title") and panel.get("description"), panel.get("title")
            assert [target["expr"] for target in panel["targets"]], panel["title"]
            refs = [target["refId"] for target in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


def test_every_variable_a_query_uses_is_defined() -> None:
    # Given every dashboard query
    undefined = []
    for expression in dashboard_expressions():
        name = expression.where.split(",")[0]
        board = dashboards()[name]
        defined = {variable["name"] for variable in board.get("templating", {}).get("list", [])}

        # When its Grafana variables are read
        used = read_query(expression.expr).variables

        # Then each is the dashboard's own or one of Grafana's
        undefined += [f"{expression.where}: ${variable}" for variable in used - defined - BUILTIN_VARIABLES]
    assert not undefined, undefined


def test_dashboard_links_lead_to_the_other_dashboard() -> None:
    # Given the uids of the dashboards
    uids = {board["uid"] for board in dashboards().values()}

    # When the links of every dashboard are read
    targets = [(name, link["url"]) for name, board in dashboards().items() for link in board.get("links", [])]

    # Then each leads to one of them
    assert targets
    for name, url in targets:
        match = re.match(r"^/d/(?P<uid>[^/?]+)", url)
        assert match and match["uid"] in uids, (name, url)


def test_the_prometheus_datasource_is_provisioned_with_the_uid_the_panels_use() -> None:
    # Given the datasource provisioning file
    datasources = load_yaml(DATASOURCES)["datasources"]

    # Then it provisions Prometheus at the compose service under uid `prometheus`, with Prometheus's scrape
    # interval so that $__rate_interval spans enough scrapes
    assert len(datasources) == 1
    prometheus = datasources[0]
    assert prometheus["uid"] == "prometheus"
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    scrape_interval = load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape_interval


def test_the_dashboard_provider_loads_the_folder_compose_mounts() -> None:
    # Given the dashboard provisioning file
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]

    # Then one file provider reads the folder where compose mounts observability/grafana/dashboards
    assert [provider["type"] for provider in providers] == ["file"]
    assert providers[0]["options"]["path"] == DASHBOARDS_MOUNT
