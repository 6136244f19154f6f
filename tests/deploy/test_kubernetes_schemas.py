"""Every manifest kustomize renders is valid for the Kubernetes API, and KEDA's objects for KEDA's CRDs.

No cluster here: the rendered resources are validated strictly (unknown fields are errors, as with
`kubectl apply --validate=strict`) against the Kubernetes API's JSON schemas of the oldest and the newest
version kubernetes-validate bundles, and KEDA's ScaledObject and TriggerAuthentication against the
openAPIV3Schema of KEDA's CRDs (tests/deploy/schemas/README.md).
"""

from __future__ import annotations

import copy

import jsonschema
import pytest

from tests.deploy.artifacts import OVERLAYS, Resource, crd_validator, render, validate_kubernetes

#: The oldest and the newest Kubernetes API schemas that kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.25", "1.37")
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def keda_errors(resource: Resource) -> list[str]:
    api_version, validator = crd_validator(resource["kind"])
    assert resource["apiVersion"] == api_version
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(resource)]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kubernetes_resource_is_valid_for_the_api(overlay: str, version: str) -> None:
    # Given the rendered resources of an overlay
    resources = [r for r in render(overlay) if r["kind"] not in KEDA_KINDS]
    assert resources

    # Then each is valid for the API of that Kubernetes version (raises with the offending field)
    for resource in resources:
        validate_kubernetes(resource, version)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_keda_resource_is_valid_for_its_crd(overlay: str) -> None:
    # Given the rendered KEDA objects of an overlay
    resources = [r for r in render(overlay) if r["kind"] in KEDA_KINDS]
    assert {r["kind"] for r in resources} == KEDA_KINDS

    # Then none breaks its CRD's schema
    for resource in resources:
        assert keda_errors(resource) == [], resource["metadata"]["name"]


def test_the_kubernetes_check_rejects_an_unknown_field() -> None:
    # Given a Deployment with a misspelt field in its container
    deployment = copy.deepcopy(next(r for r in render("base") if r["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}

    # Then the strict validation refuses it
    with pytest.raises(jsonschema.ValidationError):
        validate_kubernetes(deployment, KUBERNETES_VERSIONS[-1])


def test_the_keda_check_rejects_a_wrong_type_and_an_unknown_field() -> None:
    # Given a ScaledObject whose minReplicaCount is a string and whose trigger has a misspelt key
    scaled = copy.deepcopy(next(r for r in render("base") if r["kind"] == "ScaledObject"))
    scaled["spec"]["minReplicaCount"] = "1"
    scaled["spec"]["triggers"][0]["authRef"] = {"name": "x"}

    # Then both are reported
    assert len(keda_errors(scaled)) == 2
