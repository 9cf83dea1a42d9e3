"""No secret in any log or error output, across the whole suite (a pytest plugin).

Secrets are learned where a test hands them to the product: the secret settings in the
test process's environment and in the environment of every process a test starts,
`--api-key` arguments, and the keys given in-process to the clients, the sandboxes and
the webhook receiver (`SecretStr` too, so settings read from `.env` files count). Each
test's captured stdout, stderr and log records are scanned as it ends: a secret there
fails the test. Every text log file under the session's temporary directory (each
service's log, the broker's) is scanned when the session ends: a secret there fails the
run. Either way the failure names the file or output and the line, never the secret.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import re
import subprocess
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.clientify import ClientifyClient
from connectors.clientify.sandbox.app import SandboxOptions
from connectors.odoo.sandbox import Credentials
from producers.receiver import ReceiverConfig

SECRET_SETTINGS = ("ODOO_API_KEY", "CLIENTIFY_API_KEY", "WEBHOOK_SECRET")
# Shorter values would match ordinary text; every key the product accepts is longer.
MIN_LENGTH = 8
# Kafka's log segments are `<20-digit offset>.log`: message data, not text logs.
KAFKA_SEGMENT = re.compile(r"\d{20}\.log")


@dataclass(frozen=True)
class Leak:
    where: str
    line: int
    text: str  # the line, the secret masked: the report must not leak it again

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.text}"


class SecretScan:
    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def learn(self, value: object) -> None:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and len(value.strip()) >= MIN_LENGTH:
            self.secrets.add(value.strip())

    def learn_environment(self, env: Mapping[str, str]) -> None:
        for name in SECRET_SETTINGS:
            self.learn(env.get(name))

    def learn_arguments(self, argv: object) -> None:
        if isinstance(argv, list | tuple):
            for flag, value in itertools.pairwise(argv):
                if flag == "--api-key":
                    self.learn(value)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def leaks(self, where: str, text: str) -> Iterator[Leak]:
        """The first place of each known secret in `text`."""
        for secret in sorted(self.secrets):
            at = text.find(secret)
            if at != -1:
                start, end = text.rfind("\n", 0, at) + 1, text.find("\n", at)
                line = text[start : end if end != -1 else len(text)]
                yield Leak(where, text.count("\n", 0, at) + 1, line.replace(secret, "***"))

    def leaks_in_logs(self, root: Path) -> Iterator[Leak]:
        for path in sorted(root.rglob("*.log")):
            if path.is_file() and not KAFKA_SEGMENT.fullmatch(path.name):
                yield from self.leaks(str(path), path.read_text(errors="replace"))


SCAN = pytest.StashKey[SecretScan]()
PATCHES = pytest.StashKey[pytest.MonkeyPatch]()


def _spy(patches: pytest.MonkeyPatch, cls: type, learn: Callable[[dict[str, Any]], None]) -> None:
    """Wrap `cls.__init__` to show its arguments, by parameter name, to `learn` first."""
    original = cls.__init__  # type: ignore[misc]  # the class given, not an instance
    signature = inspect.signature(original)

    @functools.wraps(original)
    def init(self: object, *args: Any, **kwargs: Any) -> None:
        try:
            arguments = signature.bind(self, *args, **kwargs).arguments
        except TypeError:
            arguments = {}  # the original raises the same error just below
        learn(arguments)
        original(self, *args, **kwargs)

    patches.setattr(cls, "__init__", init)


def _learn_argument(scan: SecretScan, name: str, arguments: dict[str, Any]) -> None:
    scan.learn(arguments.get(name))


def _learn_started_process(scan: SecretScan, arguments: dict[str, Any]) -> None:
    scan.learn_arguments(arguments.get("args"))
    env = arguments.get("env")
    scan.learn_environment(env if env is not None else os.environ)


def pytest_configure(config: pytest.Config) -> None:
    scan = config.stash[SCAN] = SecretScan()
    patches = config.stash[PATCHES] = pytest.MonkeyPatch()
    scan.learn_environment(os.environ)
    # asyncio's subprocesses are started through Popen as well.
    _spy(patches, subprocess.Popen, functools.partial(_learn_started_process, scan))
    for cls, parameter in (
        (SecretStr, "secret_value"),
        (ClientifyClient, "api_key"),
        (SandboxOptions, "api_key"),
        (Credentials, "api_key"),
        (ReceiverConfig, "secret"),
    ):
        _spy(patches, cls, functools.partial(_learn_argument, scan, parameter))


def pytest_unconfigure(config: pytest.Config) -> None:
    config.stash[PATCHES].undo()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        # Secrets a test put in its own environment (monkeypatch.setenv) before they go.
        item.config.stash[SCAN].learn_environment(os.environ)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    scan = item.config.stash[SCAN]
    leaks = [
        leak
        for title, text in report.sections
        for leak in scan.leaks(f"{item.nodeid} ({title})", text)
    ]
    if leaks:
        # Masked: the output of a failing test is printed, and must not leak again.
        report.sections = [(title, scan.mask(text)) for title, text in report.sections]
    if leaks and report.when == "teardown":  # its report carries every phase's output
        found = "secrets in the captured output:\n" + "\n".join(map(str, leaks))
        if report.passed:
            report.outcome, report.longrepr = "failed", found
        else:
            report.sections.append(("secret scan", found))
    return report


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_log_files(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Set up first, torn down last: every service and the broker have stopped."""
    yield
    root = tmp_path_factory.getbasetemp()
    leaks = list(request.config.stash[SCAN].leaks_in_logs(root))
    assert not leaks, "secrets in log files:\n" + "\n".join(map(str, leaks))
