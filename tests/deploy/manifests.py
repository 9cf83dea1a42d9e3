"""What a rendered chart must hold, as checks on parsed manifests.

Each check returns the problems it finds (empty: none), so a test can assert on real
renders and, just as well, show on a small bad manifest that the check does catch what
it is there for.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

import yaml

from schemas.topics import TopicSpec

Manifest = dict[str, Any]

# Workloads whose pods run the services.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
# A Kubernetes object name (DNS-1123 subdomain), which a KafkaTopic's name must be.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A flag whose value is an address to listen on: the chart and compose may differ there.
HOST_FLAGS = ("--host", "--metrics-host")


def parse(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def name_of(manifest: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def component(manifest: Manifest) -> str:
    """The service a manifest belongs to, as named in docker-compose.yml."""
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def workloads(manifests: Iterable[Manifest]) -> dict[str, Manifest]:
    """The workloads by service name."""
    return {
        component(manifest): manifest
        for manifest in manifests
        if manifest["kind"] in WORKLOAD_KINDS
    }


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def flag_value(args: list[str], flag: str) -> str | None:
    """The value `flag` has in `args`, the last one winning as with argparse."""
    value = None
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(f"{flag}="):
            value = arg.split("=", 1)[1]
    return value


def served_port(args: list[str]) -> int | None:
    """The port of the /health and /metrics a `clientify-odoo` command serves, if any:
    --metrics-port, or the webhook receiver's own --port (it serves both there)."""
    port = flag_value(args, "--metrics-port")
    if port is None and args[:2] == ["webhooks", "serve"]:
        port = flag_value(args, "--port")
    return None if port is None or int(port) == 0 else int(port)


def _encodings(value: str) -> set[str]:
    return {value, base64.b64encode(value.encode()).decode()}


def secret_leaks(manifests: Iterable[Manifest], secrets: Iterable[str]) -> list[str]:
    """Where a secret value (as is, or base64) shows outside a kind: Secret object: in a
    ConfigMap, an env `value:`, args, command, an annotation, anywhere at all."""
    secrets = list(secrets)
    problems = []
    for manifest in manifests:
        if manifest["kind"] == "Secret":
            continue
        text = yaml.safe_dump(manifest)
        for secret in secrets:
            if any(encoded in text for encoded in _encodings(secret)):
                problems.append(f"{name_of(manifest)} holds the secret {secret[:4]}...")
    return problems


def secrets_held(manifests: Iterable[Manifest], secrets: Iterable[str]) -> list[str]:
    """The secret values that no Secret holds (so the leak check is not vacuous)."""
    held: set[str] = set()
    for manifest in manifests:
        if manifest["kind"] == "Secret":
            held.update(base64.b64decode(value).decode() for value in manifest["data"].values())
            held.update(manifest.get("stringData", {}).values())
    return [f"no Secret holds {secret[:4]}..." for secret in secrets if secret not in held]


def _probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int | None:
    port = probe.get("httpGet", {}).get("port")
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return int(declared["containerPort"])
    return None


def probe_problems(workload: Manifest) -> list[str]:
    """A container serving /health must have both probes on /health at the port its
    command serves; one serving nothing has no HTTP probe to have."""
    problems = []
    for container in containers(workload):
        port = served_port(container.get("args", []))
        if port is None:
            continue
        for kind in ("livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            where = f"{name_of(workload)} {container['name']} {kind}"
            if probe is None:
                problems.append(f"{where}: missing")
            elif probe.get("httpGet", {}).get("path") != "/health":
                problems.append(f"{where}: not on /health")
            elif _probe_port(container, probe) != port:
                problems.append(f"{where}: port {_probe_port(container, probe)}, serves {port}")
    return problems


def resource_problems(workload: Manifest) -> list[str]:
    problems = []
    for container in containers(workload):
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not resources.get(bound, {}).get(resource):
                    problems.append(
                        f"{name_of(workload)} {container['name']}: no {bound}.{resource}"
                    )
    return problems


def annotation_problems(workload: Manifest) -> list[str]:
    """Prometheus annotations on the pods of a service that serves /metrics, with its
    port; none claiming a scrape on one that serves none."""
    annotations = workload["spec"]["template"]["metadata"].get("annotations") or {}
    ports = {served_port(c.get("args", [])) for c in containers(workload)} - {None}
    if not ports:
        if annotations.get("prometheus.io/scrape") == "true":
            return [f"{name_of(workload)}: scraped, but serves no /metrics"]
        return []
    wanted = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(ports.pop()),
        "prometheus.io/path": "/metrics",
    }
    return [
        f"{name_of(workload)}: {key} is {annotations.get(key)!r}, not {value!r}"
        for key, value in wanted.items()
        if annotations.get(key) != value
    ]


def _claimed_mounts(workload: Manifest) -> Iterator[tuple[dict[str, Any], PurePosixPath]]:
    """Each container with each path of it mounted from a volumeClaimTemplate."""
    claims = {
        claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])
    }
    for container in containers(workload):
        for mount in container.get("volumeMounts", []):
            if mount["name"] in claims:
                yield container, PurePosixPath(mount["mountPath"])


def volume_problems(workload: Manifest, flag: str) -> list[str]:
    """The path the command's `flag` names (the worker's --data-dir, the reporter's
    --db) must be on a persistent volume: a volumeClaimTemplate mounted at it or above."""
    problems = []
    for container in containers(workload):
        value = flag_value(container.get("args", []), flag)
        if value is None:
            problems.append(f"{name_of(workload)} {container['name']}: no {flag}")
            continue
        path = PurePosixPath(value)
        mounted = [
            mount
            for owner, mount in _claimed_mounts(workload)
            if owner is container and (path == mount or mount in path.parents)
        ]
        if not mounted:
            problems.append(f"{name_of(workload)}: {flag} {path} is on no persistent volume")
    return problems


def normalized(args: list[str]) -> list[str]:
    """A command with the addresses it listens on left out, the one allowed difference
    between the chart (in-cluster) and the compose file."""
    kept = list(args)
    for index, arg in enumerate(kept[:-1]):
        if arg in HOST_FLAGS:
            kept[index + 1] = "<address>"
    return kept


def command_problems(chart: dict[str, Manifest], compose: dict[str, list[str]]) -> list[str]:
    """Every compose service (name -> its `command:`) is a chart workload whose container
    runs the same sub-command with the same flags, and the chart runs no other."""
    problems = [f"{name}: in the chart, not in compose" for name in chart.keys() - compose.keys()]
    for name, command in compose.items():
        workload = chart.get(name)
        if workload is None:
            problems.append(f"{name}: in compose, not in the chart")
            continue
        args = containers(workload)[0].get("args", [])
        if normalized(args) != normalized(command):
            problems.append(f"{name}: chart runs {args}, compose {command}")
    return problems


def image_repository(image: str) -> str:
    """`registry/name:tag` without its tag (a digest or a port is not a tag)."""
    image = image.split("@", 1)[0]
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


def image_problems(chart: dict[str, Manifest], repository: str) -> list[str]:
    return [
        f"{name_of(workload)} {container['name']}: image {container['image']}"
        for workload in chart.values()
        for container in containers(workload)
        if image_repository(container["image"]) != repository
    ]


def kafkatopic_problems(
    manifests: Iterable[Manifest], specs: Iterable[TopicSpec], prefix: str, replicas: int
) -> list[str]:
    """The KafkaTopics are exactly the declared topics under the prefix, each with the
    partitions and configs `kafka topics` creates it with, a valid and unique object
    name, and kept when the release is uninstalled."""
    topics = [manifest for manifest in manifests if manifest["kind"] == "KafkaTopic"]
    by_name = {topic["spec"]["topicName"]: topic for topic in topics}
    declared = {prefix + spec.name: spec for spec in specs}
    problems = [f"{name}: a KafkaTopic, not declared" for name in by_name.keys() - declared]
    problems += [f"{name}: declared, no KafkaTopic" for name in declared.keys() - by_name]
    names = [topic["metadata"]["name"] for topic in topics]
    problems += [
        f"{name}: two KafkaTopics named so" for name in {n for n in names if names.count(n) > 1}
    ]
    for name, spec in declared.items():
        topic = by_name.get(name)
        if topic is None:
            continue
        if not DNS_SUBDOMAIN.fullmatch(topic["metadata"]["name"]):
            problems.append(f"{name}: {topic['metadata']['name']!r} is no Kubernetes name")
        if topic["spec"]["partitions"] != spec.partitions:
            problems.append(
                f"{name}: {topic['spec']['partitions']} partitions, not {spec.partitions}"
            )
        if topic["spec"]["replicas"] != replicas:
            problems.append(f"{name}: replicas {topic['spec']['replicas']}, not {replicas}")
        config = {key: str(value) for key, value in topic["spec"].get("config", {}).items()}
        for key, value in spec.configs().items():
            if config.get(key) != value:
                problems.append(f"{name}: {key} is {config.get(key)!r}, not {value!r}")
        if not topic["metadata"].get("labels", {}).get("strimzi.io/cluster"):
            problems.append(f"{name}: no strimzi.io/cluster label")
        if topic["metadata"].get("annotations", {}).get("helm.sh/resource-policy") != "keep":
            problems.append(f"{name}: deleted with the release (and its records with it)")
    return problems
