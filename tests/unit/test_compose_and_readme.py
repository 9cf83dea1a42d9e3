"""The compose files run real sub-commands on one image, the cluster file makes three
brokers, and the README's two commands are CI's."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from clientify_odoo.cli import build_parser
from tests.support.compose_stack import (
    BASE_FILE,
    CLUSTER_FILE,
    CLUSTER_PORT_VARIABLES,
    PORT_VARIABLES,
)
from tests.support.project import REPO, compose


def app_services() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, service)
        for name, service in compose()["services"].items()
        if service.get("image", "").startswith("clientify-odoo")
    ]


def test_kafka_is_the_official_image_in_kraft_mode() -> None:
    kafka = compose()["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


@pytest.mark.parametrize(("name", "service"), app_services())
def test_every_app_service_runs_a_real_sub_command(name: str, service: dict[str, Any]) -> None:
    command = service["command"]
    try:
        build_parser().parse_args(command)
    except SystemExit as exc:
        pytest.fail(f"service {name}: `clientify-odoo {' '.join(command)}` does not parse ({exc})")
    assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"


def test_the_image_is_built_once_for_every_app_service() -> None:
    """Only `topics` builds it: compose would otherwise build the same image once per
    service that has a `build:` section."""
    services = compose()["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["topics"]
    assert {service["image"] for _name, service in app_services()} == {"clientify-odoo:dev"}
    assert len(app_services()) == 10
    assert services["topics"]["build"]["args"] == {"BASE_IMAGE": "python:3.11-slim"}


def test_the_image_runs_as_its_own_user_on_a_replaceable_base() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n" in dockerfile
    # Debian images already have a system user `sync` (uid 4).
    assert "useradd --uid 10001 --gid 10001" in dockerfile
    assert re.findall(r"^USER (.+)$", dockerfile, flags=re.MULTILINE) == ["10001:10001"]


def test_the_cluster_file_makes_three_voters_of_three_brokers() -> None:
    services = compose("docker-compose.cluster.yml")["services"]
    voters = "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
    brokers = {name: services[name]["environment"] for name in ("kafka", "kafka-2", "kafka-3")}
    for node, (name, env) in enumerate(brokers.items(), 1):
        assert env["KAFKA_NODE_ID"] == node
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_ADVERTISED_LISTENERS"].startswith(f"INTERNAL://{name}:19092,")
    # Each broker is advertised to the host on its own port.
    hosts = [env["KAFKA_ADVERTISED_LISTENERS"].split(",HOST://")[1] for env in brokers.values()]
    assert hosts == ["127.0.0.1:9092", "127.0.0.1:9095", "127.0.0.1:9096"]
    # The base file alone stays one broker.
    single = compose()["services"]["kafka"]["environment"]
    assert single["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    # Every app service reaches all three.
    for name, _service in app_services():
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092,kafka-2:19092,kafka-3:19092"


def test_the_compose_tests_move_every_published_port() -> None:
    """A port the tests do not move would meet whatever else listens on this machine."""
    files = "".join((REPO / name).read_text() for name in (BASE_FILE, CLUSTER_FILE))
    assert set(re.findall(r"\$\{(\w+_PORT):-", files)) == {*PORT_VARIABLES, *CLUSTER_PORT_VARIABLES}


def test_the_image_contains_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}" in dockerfile, package


def test_readme_gives_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^```\n(\./dev [a-z]+)\n```", section, flags=re.MULTILINE)
    assert commands == ["./dev up", "./dev test"]
    assert "\n./dev test\n" in (REPO / ".ci" / "run").read_text()
