"""The compose file runs real sub-commands, and the README's two commands are CI's."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from clientify_odoo.cli import build_parser
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
