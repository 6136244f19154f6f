"""The pools' egress NetworkPolicy, as kustomize renders it: which pods it holds, and where they may connect.

Its validity for the Kubernetes API is checked with every other rendered resource
(tests/deploy/test_kubernetes_schemas.py). Here its meaning is: each rule is read the way Kubernetes reads it,
to answer "may a pool pod connect to this address and port?".
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest

from pipeline.sources.urls import METADATA_ADDRESSES
from tests.deploy.artifacts import OVERLAYS, POOLS, Resource, of_kind, one, render, validate_kubernetes
from tests.deploy.test_kubernetes_schemas import KUBERNETES_VERSIONS

POLICY = "livedash-pools-egress"


def policy_of(resources: list[Resource]) -> Resource:
    return of_kind(resources, "NetworkPolicy")[POLICY]


def selects(policy: Resource, labels: dict[str, str]) -> bool:
    [expression] = policy["spec"]["podSelector"]["matchExpressions"]
    assert expression["operator"] == "In"
    return labels.get(expression["key"]) in expression["values"]


def ip_rules(policy: Resource) -> list[dict[str, Any]]:
    """The egress rules whose peers are address blocks, which are what a raw address can match."""
    return [rule for rule in policy["spec"]["egress"] if any("ipBlock" in peer for peer in rule["to"])]


def allows_address(policy: Resource, address: str, port: int) -> bool:
    """Whether a TCP connection to ``address:port`` matches an ipBlock rule of the policy."""
    ip = ipaddress.ip_address(address)
    for rule in ip_rules(policy):
        ports = rule.get("ports", [])
        if ports and not any(p["protocol"] == "TCP" and p.get("port") in (None, port) for p in ports):
            continue
        for peer in rule["to"]:
            block = peer["ipBlock"]
            network = ipaddress.ip_network(block["cidr"])
            if ip.version == network.version and ip in network:
                excluded = (ipaddress.ip_network(cidr) for cidr in block.get("except", []))
                if not any(ip.version == e.version and ip in e for e in excluded):
                    return True
    return False


def secret_urls(resources: list[Resource]) -> dict[str, str]:
    secret = one(resources, "Secret", "livedash-secrets-")
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_ships_a_valid_policy(overlay: str, version: str) -> None:
    # Given the policy each overlay renders
    # Then it is valid, strictly, for the API of that Kubernetes version (raises with the offending field)
    validate_kubernetes(policy_of(render(overlay)), version)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_policy_holds_every_pool_and_nothing_else(overlay: str) -> None:
    # Given the rendered resources
    resources = render(overlay)
    policy = policy_of(resources)
    deployments = of_kind(resources, "Deployment")

    # Then the policy restricts egress (only) of exactly the pool pods
    assert policy["spec"]["policyTypes"] == ["Egress"]
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(policy, labels) is (name.removeprefix("livedash-") in POOLS), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pools_may_resolve_names_and_reach_the_database_and_the_broker(overlay: str) -> None:
    # Given the policy, and the ports of the database and broker URLs the pools are given
    resources = render(overlay)
    rules = policy_of(resources)["spec"]["egress"]
    urls = secret_urls(resources)
    database_port = urlsplit(urls["DATABASE_URL"]).port or 5432
    broker_port = urlsplit(urls["RABBITMQ_URL"]).port or 5672

    def ports_to(pod_labels: dict[str, str]) -> set[tuple[str, int]]:
        return {
            (port["protocol"], port["port"])
            for rule in rules
            for peer in rule["to"]
            if peer.get("podSelector", {}).get("matchLabels") == pod_labels
            for port in rule["ports"]
        }

    # Then DNS, PostgreSQL and RabbitMQ each have a rule to their own pods on their own ports
    assert ports_to({"k8s-app": "kube-dns"}) == {("UDP", 53), ("TCP", 53)}
    assert ports_to({"app.kubernetes.io/name": "postgresql"}) == {("TCP", database_port)}
    assert ports_to({"app.kubernetes.io/name": "rabbitmq"}) == {("TCP", broker_port)}


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "100.64.0.1",
        "127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "fe80::1",
        "fd12::1",
        "::1",
        "64:ff9b::a9fe:a9fe",
        *sorted(str(address) for address in METADATA_ADDRESSES),
    ],
)
def test_no_address_block_lets_a_pool_reach_internal_or_metadata_addresses(address: str) -> None:
    # Given the policy
    policy = policy_of(render("base"))

    # Then no address block opens an internal, link-local or metadata address, on any port
    for port in (80, 443, 5432, 5672, 15672):
        assert not allows_address(policy, address, port), f"{address}:{port}"


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "104.18.7.192", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
)
def test_public_addresses_are_reachable_on_any_tcp_port(address: str) -> None:
    policy = policy_of(render("base"))

    for port in (443, 80, 8443):
        assert allows_address(policy, address, port), f"{address}:{port}"


def test_address_blocks_only_open_tcp() -> None:
    # Given the rules with address blocks
    # Then each names TCP only: no UDP (or other protocol) leaves for public addresses
    for rule in ip_rules(policy_of(render("base"))):
        assert {port["protocol"] for port in rule["ports"]} == {"TCP"}
