"""The Helm chart (deploy/helm/clientify-odoo) renders, lints, and its manifests hold what
matters: no secret outside a Secret, a persistent volume under the worker's state,
probes on each service's /health, resources, Prometheus annotations, and the image and
command of each service as in docker-compose.yml.

No cluster runs here: the chart is rendered with the pinned Helm (`HELM`, else
deploy/helm/install-helm, which builds it once into a cache). Without Helm these tests
fail; they never skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.topics import ALL_TOPICS
from tests.deploy.manifests import (
    Manifest,
    annotation_problems,
    command_problems,
    containers,
    image_problems,
    image_repository,
    kafkatopic_problems,
    parse,
    pod_spec,
    probe_problems,
    resource_problems,
    secret_leaks,
    secrets_held,
    volume_problems,
    workloads,
)
from tests.support.project import REPO, compose

CHART = REPO / "deploy" / "helm" / "clientify-odoo"
INSTALL_HELM = REPO / "deploy" / "helm" / "install-helm"
EXAMPLE = CHART / "examples" / "values-acme.yaml"

# Distinctive values, so finding one anywhere can only mean it leaked there.
SECRETS = {
    "secrets.odooApiKey": "odoo-key-5b1f0c9e7d2a4c6b",
    "secrets.clientifyApiKey": "clientify-key-8e3d6a1f4b7c",
    "secrets.webhookSecret": "webhook-secret-2c9f7e4a1d6b",
    "secrets.odooHookSecret": "odoo-hook-secret-7a4e1c9b3f",
}
# The keys each service reads from the Secret, and no others.
SECRET_KEYS = {
    "odoo-poller": ["ODOO_API_KEY"],
    "webhook-receiver": ["WEBHOOK_SECRET", "ODOO_HOOK_SECRET"],
    "reconciler": ["CLIENTIFY_API_KEY"],
    "worker": [],
    "clientify-writer": ["CLIENTIFY_API_KEY"],
    "odoo-writer": ["ODOO_API_KEY"],
    "reporter": [],
    "topics": [],
}


@pytest.fixture(scope="session")
def helm() -> str:
    configured = os.environ.get("HELM")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"HELM={configured} is not an executable")
        return configured
    # Prints the cached binary's path at once; builds it first on a new machine.
    installed = subprocess.run([str(INSTALL_HELM)], capture_output=True, text=True)
    if installed.returncode != 0:
        pytest.fail(f"deploy/helm/install-helm failed:\n{installed.stderr}")
    return installed.stdout.strip()


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True)


def render(helm: str, *args: str) -> list[Manifest]:
    result = run_helm(helm, "template", "acme", str(CHART), "--namespace", "sync", *args)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def secret_flags() -> list[str]:
    return [flag for key, value in SECRETS.items() for flag in ("--set", f"{key}={value}")]


def _interpolated(value: str) -> str:
    """A compose value with `${VAR:-default}` (or `${VAR-default}`) as its default."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)


def compose_app() -> tuple[str, dict[str, list[str]]]:
    """The compose file's app image and each service's `command:` that the chart must
    run too: every service of that image in the default stack (no `profiles:`), but the
    sandboxes, which stand in for Odoo and Clientify and are no part of the chart."""
    services: dict[str, dict[str, Any]] = compose()["services"]
    built = {_interpolated(service["image"]) for service in services.values() if "build" in service}
    assert len(built) == 1, f"expected one image built from ./Dockerfile, found {built}"
    image = built.pop()
    commands = {
        name: [_interpolated(str(arg)) for arg in service["command"]]
        for name, service in services.items()
        if _interpolated(service.get("image", "")) == image
        and "profiles" not in service
        and service["command"][0] != "sandbox"
    }
    return image, commands


def dockerfile_uid() -> int:
    """The uid of the image's non-root user, as the Dockerfile creates it."""
    text = (REPO / "Dockerfile").read_text()
    arguments = dict(re.findall(r"^ARG\s+(\w+)=(\d+)", text, flags=re.MULTILINE))
    found = re.search(r"(?:useradd|adduser)[^\n]*?(?:--uid|-u)[\s=]+(\$\{?(\w+)\}?|\d+)", text)
    if found is None:
        found = re.search(r"^USER\s+(\d+)", text, flags=re.MULTILINE)
        assert found is not None, "no uid found in the Dockerfile (useradd --uid N or USER N)"
        return int(found.group(1))
    if found.group(1).isdigit():
        return int(found.group(1))
    return int(arguments[found.group(2)])


# ------------------------------------------------------------------ lint and render


@pytest.mark.parametrize("values", [[], ["--values", str(EXAMPLE)]], ids=["default", "example"])
def test_the_chart_lints_strictly(helm: str, values: list[str]) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_compose_service_runs_the_same_image_and_command(helm: str) -> None:
    image, commands = compose_app()
    chart = workloads(render(helm))
    assert command_problems(chart, commands) == []
    # The tag differs on purpose: compose builds `dev` locally, a release runs its version.
    assert image_problems(chart, image_repository(image)) == []


def test_every_service_has_probes_resources_and_prometheus_annotations(helm: str) -> None:
    chart = workloads(render(helm))
    served = {name for name, workload in chart.items() if "ports" in containers(workload)[0]}
    # The six long-running services of clientify_odoo.services serve /health and /metrics.
    assert served == {
        "odoo-poller",
        "webhook-receiver",
        "reconciler",
        "worker",
        "clientify-writer",
        "odoo-writer",
    }
    for workload in chart.values():
        assert probe_problems(workload) == []
        assert resource_problems(workload) == []
        assert annotation_problems(workload) == []


def test_the_worker_and_the_reporter_keep_their_state_on_persistent_volumes(helm: str) -> None:
    chart = workloads(render(helm))
    assert chart["worker"]["kind"] == "StatefulSet"
    assert volume_problems(chart["worker"], "--data-dir") == []
    assert chart["reporter"]["kind"] == "StatefulSet"
    assert volume_problems(chart["reporter"], "--db") == []


def test_pods_run_as_the_images_non_root_user(helm: str) -> None:
    uid = dockerfile_uid()
    for name, workload in workloads(render(helm)).items():
        context = pod_spec(workload)["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == uid, f"{name}: runAsUser {context['runAsUser']}, image {uid}"


# ------------------------------------------------------------------ secrets


def test_secrets_are_only_in_the_secret(helm: str) -> None:
    manifests = render(helm, *secret_flags())
    assert secrets_held(manifests, SECRETS.values()) == []
    assert secret_leaks(manifests, SECRETS.values()) == []


def test_each_service_reads_only_its_own_keys_from_an_existing_secret(helm: str) -> None:
    manifests = render(helm, "--set", "secrets.existingSecret=acme-keys")
    assert [m for m in manifests if m["kind"] == "Secret"] == []
    for name, workload in workloads(manifests).items():
        refs = [
            env["valueFrom"]["secretKeyRef"]
            for env in containers(workload)[0]["env"]
            if "valueFrom" in env
        ]
        assert [ref["name"] for ref in refs] == ["acme-keys"] * len(refs), name
        assert [ref["key"] for ref in refs] == SECRET_KEYS[name], name


def test_odoos_hook_secret_is_optional(helm: str) -> None:
    """Odoo 16, or a database without automation rules, is polled only: the receiver
    starts without ODOO_HOOK_SECRET, from the chart's Secret or one of the user's."""
    for flags in ([], ["--set", "secrets.existingSecret=acme-keys"]):
        manifests = render(helm, *flags)
        receiver = containers(workloads(manifests)["webhook-receiver"])[0]
        refs = {
            env["name"]: env["valueFrom"]["secretKeyRef"]
            for env in receiver["env"]
            if "valueFrom" in env
        }
        assert refs["ODOO_HOOK_SECRET"].get("optional") is True, flags
        assert "optional" not in refs["WEBHOOK_SECRET"], flags
    [secret] = [m for m in render(helm) if m["kind"] == "Secret"]
    assert "ODOO_HOOK_SECRET" not in secret["data"]
    [secret] = [m for m in render(helm, *secret_flags()) if m["kind"] == "Secret"]
    assert "ODOO_HOOK_SECRET" in secret["data"]


def test_an_existing_secret_with_inline_keys_is_refused(helm: str) -> None:
    result = run_helm(
        helm,
        "template",
        "acme",
        str(CHART),
        "--set",
        "secrets.existingSecret=acme-keys",
        "--set",
        "secrets.odooApiKey=inline",
    )
    assert result.returncode != 0
    assert "secrets.existingSecret is set" in result.stderr


def test_a_mapping_file_comes_from_a_configmap(helm: str) -> None:
    mapping = REPO / "schemas" / "mapping" / "mapping.yaml"
    manifests = render(helm, "--set-file", f"mapping={mapping}")
    (configmap,) = [m for m in manifests if m["kind"] == "ConfigMap"]
    assert configmap["data"]["mapping.yaml"].strip() == mapping.read_text().strip()
    worker = containers(workloads(manifests)["worker"])[0]
    assert {"name": "MAPPING_FILE", "value": "/etc/clientify-odoo/mapping.yaml"} in worker["env"]
    assert any(m["mountPath"] == "/etc/clientify-odoo" for m in worker["volumeMounts"])


# Values documented as one row, not key by key.
WHOLE_BLOCKS = {"resources", "podSecurityContext", "containerSecurityContext", "probes"}


def value_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths of the values a user sets, as the chart's README lists them."""
    paths = []
    for key, value in values.items():
        path = prefix + key
        if isinstance(value, dict) and value and key not in WHOLE_BLOCKS:
            paths += value_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def test_the_charts_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([\w.]+)` \|", readme, flags=re.MULTILINE))
    assert set(value_paths(values)) == documented


# ------------------------------------------------------------------ Strimzi topics


def test_strimzi_topics_are_the_declared_topics(helm: str) -> None:
    assert [m for m in render(helm) if m["kind"] == "KafkaTopic"] == []
    manifests = render(
        helm,
        "--set",
        "strimzi.topics.enabled=true",
        "--set",
        "strimzi.clusterName=events",
        "--set",
        "connection.topicPrefix=acme.",
    )
    assert kafkatopic_problems(manifests, ALL_TOPICS, "acme.", replicas=3) == []
    for topic in (m for m in manifests if m["kind"] == "KafkaTopic"):
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "events"


def test_strimzi_topics_need_the_cluster_name(helm: str) -> None:
    result = run_helm(helm, "template", "acme", str(CHART), "--set", "strimzi.topics.enabled=true")
    assert result.returncode != 0
    assert "strimzi.clusterName" in result.stderr


def test_the_charts_topic_list_is_generated_from_the_declarations() -> None:
    path = REPO / "deploy" / "helm" / "generate_topics.py"
    spec = importlib.util.spec_from_file_location("generate_topics", path)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    current: Path = generator.TOPICS_FILE
    assert current.read_text() == generator.render(), (
        "files/topics.yaml is stale: run .venv/bin/python deploy/helm/generate_topics.py"
    )


# ------------------------------------------------------------------ the checks catch


def test_a_secret_put_anywhere_else_is_caught(helm: str) -> None:
    secret = SECRETS["secrets.odooApiKey"]
    for flags in (
        ["--set-string", f"podAnnotations.note={secret}"],
        ["--set", "extraEnv[0].name=DEBUG_KEY", "--set", f"extraEnv[0].value={secret}"],
        ["--set", f"odooPoller.extraArgs={{--api-key,{secret}}}"],
        ["--set-string", f"mapping={secret}"],
    ):
        manifests = render(helm, *secret_flags(), *flags)
        assert secret_leaks(manifests, [secret]), flags


def test_a_probe_on_another_port_than_the_command_serves_is_caught(helm: str) -> None:
    # argparse takes the last --metrics-port: the poller serves 9999, probed on 9401.
    manifests = render(helm, "--set", "odooPoller.extraArgs={--metrics-port,9999}")
    poller = workloads(manifests)["odoo-poller"]
    assert probe_problems(poller) == [
        f"Deployment/acme-clientify-odoo-odoo-poller odoo-poller {kind}: port 9401, serves 9999"
        for kind in ("livenessProbe", "readinessProbe")
    ]
    assert annotation_problems(poller) == [
        "Deployment/acme-clientify-odoo-odoo-poller: prometheus.io/port is '9401', not '9999'"
    ]
    assert command_problems({"odoo-poller": poller}, {"odoo-poller": ["poll", "odoo"]})


def bad_worker(**container: Any) -> Manifest:
    """A small StatefulSet for the checks to find fault with."""
    base = {
        "name": "worker",
        "image": "clientify-odoo:1",
        "args": ["worker", "--data-dir", "/data/worker", "--metrics-port", "9404"],
        "ports": [{"name": "http", "containerPort": 9404}],
    }
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "w", "labels": {"app.kubernetes.io/component": "worker"}},
        "spec": {
            "template": {"metadata": {}, "spec": {"containers": [base | container]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
        },
    }


def test_the_checks_find_fault_with_a_bad_manifest() -> None:
    worker = bad_worker(
        volumeMounts=[{"name": "scratch", "mountPath": "/data"}],
        readinessProbe={"httpGet": {"path": "/", "port": "http"}},
        resources={"requests": {"cpu": "1"}},
    )
    assert volume_problems(worker, "--data-dir") == [
        "StatefulSet/w: --data-dir /data/worker is on no persistent volume"
    ]
    assert probe_problems(worker) == [
        "StatefulSet/w worker livenessProbe: missing",
        "StatefulSet/w worker readinessProbe: not on /health",
    ]
    assert resource_problems(worker) == [
        "StatefulSet/w worker: no requests.memory",
        "StatefulSet/w worker: no limits.cpu",
        "StatefulSet/w worker: no limits.memory",
    ]
    assert len(annotation_problems(worker)) == 3
    assert image_problems({"worker": worker}, "elsewhere/clientify-odoo")
    mounted = bad_worker(volumeMounts=[{"name": "data", "mountPath": "/data"}])
    assert volume_problems(mounted, "--data-dir") == []
    configmap = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "czNjcjN0"}}
    assert secret_leaks([configmap], ["s3cr3t"]) == ["ConfigMap/c holds the secret s3cr..."]
    assert secrets_held([configmap], ["s3cr3t"]) == ["no Secret holds s3cr..."]


def test_the_topic_check_finds_a_missing_or_wrong_topic(helm: str) -> None:
    manifests = render(
        helm, "--set", "strimzi.topics.enabled=true", "--set", "strimzi.clusterName=events"
    )
    topics = [m for m in manifests if m["kind"] == "KafkaTopic"]
    dropped, changed = topics[0], topics[1]
    changed["spec"]["partitions"] = 1
    changed["spec"]["config"]["cleanup.policy"] = "compact"
    name = changed["spec"]["topicName"]
    assert kafkatopic_problems(topics[1:], ALL_TOPICS, "", replicas=3) == [
        f"{dropped['spec']['topicName']}: declared, no KafkaTopic",
        f"{name}: 1 partitions, not 3",
        f"{name}: cleanup.policy is 'compact', not 'delete'",
    ]


def test_the_compose_reading_takes_defaults_and_skips_the_sandboxes() -> None:
    assert _interpolated("${APP_IMAGE:-clientify-odoo:dev}") == "clientify-odoo:dev"
    image, commands = compose_app()
    assert image_repository(image) == "clientify-odoo"
    assert "topics" in commands and "worker" in commands
    assert not {"kafka", "odoo-sandbox", "clientify-sandbox"} & commands.keys()
