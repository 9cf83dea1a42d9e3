"""The compose stack as the README runs it (`docker compose up --build --wait`), for the
tests in tests/compose: a project of its own, free host ports, a fresh WEBHOOK_SECRET,
and always `down -v` at the end, with the services' logs when something failed.

Only what Docker needs reaches compose from the test's environment, and its variables
come from a file the test writes, never the checkout's `.env`: a developer's ODOO_URL
or KAFKA_BOOTSTRAP_SERVERS must not point the test's stack at their systems. The images
are the ones BASE_IMAGE and KAFKA_IMAGE name (the environment, else the checkout's
`.env`, where docs/operations.md puts them), else the public defaults.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from clientify_odoo.stack.broker import free_port_pair
from clientify_odoo.stack.plan import read_env_file
from connectors.clientify import ClientifyClient
from connectors.odoo.client import OdooClient, OdooConfig
from schemas.envelope import DeadLetter
from schemas.topics import DEAD_LETTERS, Topics
from tests.support.chaos import Changes, Systems, differences
from tests.support.project import REPO
from tests.support.stack_fixtures import topic_messages

# Every project a test starts is named so; .ci/run removes what a killed run left.
PROJECT_PREFIX = "clientify-odoo-test-"
BASE_FILE = "docker-compose.yml"
CLUSTER_FILE = "docker-compose.cluster.yml"
IMAGE_VARIABLES = ("BASE_IMAGE", "KAFKA_IMAGE")
# The host port of each published service (the compose files' <SERVICE>_PORT).
PORT_VARIABLES = (
    "KAFKA_PORT", "ODOO_SANDBOX_PORT", "CLIENTIFY_SANDBOX_PORT", "WEBHOOK_RECEIVER_PORT",
    "ODOO_POLLER_PORT", "RECONCILER_PORT", "WORKER_PORT", "CLIENTIFY_WRITER_PORT",
    "ODOO_WRITER_PORT",
)  # fmt: skip
CLUSTER_PORT_VARIABLES = ("KAFKA_2_PORT", "KAFKA_3_PORT")
DOCKER_ENVIRONMENT = (
    "PATH", "HOME", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY", "TMPDIR",
)  # fmt: skip
# The sandboxes' keys in docker-compose.yml: public demo values.
ODOO_SANDBOX_KEY = "0123456789abcdef0123456789abcdef01234567"
CLIENTIFY_SANDBOX_KEY = "sandbox-clientify-key"
UP_WITHIN = 300  # seconds for the build and every service's first healthy /health
LOG_LINES = 60  # per service, printed when a test fails


def local_images() -> Path | None:
    """`local-images` (LOCAL_IMAGES, else the nearest shared/docker/ above the checkout,
    as `.ci/run` finds it): it makes Docker work on machines without an image registry."""
    given = os.environ.get("LOCAL_IMAGES")
    if given:
        return Path(given)
    found = (folder / "shared" / "docker" / "local-images" for folder in REPO.parents)
    return next((candidate for candidate in found if candidate.is_file()), None)


def start_docker(script: Path) -> None:
    """`local-images up`, as `.ci/run` does, so that `./dev test` alone works on these
    machines: it starts dockerd and builds the stand-in images when missing (minutes
    the first time, a fraction of a second after), and names the images to use."""
    done = subprocess.run([str(script), "up"], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        pytest.fail(f"`{script} up` failed (it must run as root):\n{done.stderr[-2000:]}")
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        if name in IMAGE_VARIABLES and value:
            os.environ.setdefault(name, value)


def require_docker() -> None:
    """Fail (never skip) without a Docker engine and compose v2: CI must run these.
    Where `local-images` is found and the images are not named, it is run first."""
    how = "run `local-images up` (shared/docker/) as root, or install Docker and compose v2"
    script = local_images()
    if script is not None and not all(os.environ.get(name) for name in IMAGE_VARIABLES):
        start_docker(script)
    if shutil.which("docker") is None:
        pytest.fail(f"no `docker` command: {how}")
    for check in (["docker", "info"], ["docker", "compose", "version"]):
        done = subprocess.run(check, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(check)}` failed: {done.stderr.strip()[-300:]}\n{how}")


def images() -> dict[str, str]:
    """BASE_IMAGE and KAFKA_IMAGE from the environment, else the checkout's `.env`."""
    dotenv = read_env_file(REPO / ".env")
    found = {name: os.environ.get(name) or dotenv.get(name, "") for name in IMAGE_VARIABLES}
    return {name: value for name, value in found.items() if value}


class ComposeStack:
    """One compose project on this machine's Docker engine, and the APIs of its two
    sandboxes as published on 127.0.0.1 (what `tests.support.chaos.Systems` asks)."""

    def __init__(self, tmp: Path, *, cluster: bool = False) -> None:
        self.project = PROJECT_PREFIX + uuid.uuid4().hex[:8]
        self.files = (BASE_FILE, CLUSTER_FILE) if cluster else (BASE_FILE,)
        ports = PORT_VARIABLES + (CLUSTER_PORT_VARIABLES if cluster else ())
        self.ports = {name: free_port_pair() for name in ports}
        self.webhook_secret = secrets.token_urlsafe(24)
        self.image = f"clientify-odoo:{self.project}"
        self.variables = {
            **images(),
            **{name: str(port) for name, port in self.ports.items()},
            "WEBHOOK_SECRET": self.webhook_secret,
            # An image of its own: tests of other checkouts may share this engine.
            "CLIENTIFY_ODOO_IMAGE": self.image,
        }
        # The variables in a file too, so a stack left behind can be inspected with
        # `docker compose --env-file <it> -p <project> ...`.
        self.env_file = tmp / "compose.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.variables.items()))
        self.env_file.chmod(0o600)
        docker_env = {k: os.environ[k] for k in DOCKER_ENVIRONMENT if k in os.environ}
        self.env = {**docker_env, **self.variables}
        self.seconds: dict[str, float] = {}

    def compose(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-p", self.project, "--env-file", str(self.env_file)]
        for file in self.files:
            argv += ["-f", str(REPO / file)]
        done = subprocess.run(
            [*argv, *args], cwd=REPO, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"`docker compose {' '.join(args)}` exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        return done

    def timed(self, what: str, *args: str, timeout: float = 120) -> None:
        started = time.monotonic()
        self.compose(*args, timeout=timeout)
        self.seconds[what] = round(time.monotonic() - started, 1)

    def up(self) -> None:
        """What the README says, timed: the image is built (once: only `topics` builds
        it), then everything starts and `--wait` returns once each service is healthy."""
        self.timed("up --build --wait", "up", "--build", "--wait",
                   "--wait-timeout", str(UP_WITHIN), timeout=UP_WITHIN + 60)  # fmt: skip

    def down(self) -> None:
        """Containers, network and volumes, then the project's image tag (its layers stay
        cached for the next build)."""
        self.timed("down -v", "down", "--volumes", "--remove-orphans", "--timeout", "20",
                   timeout=180)  # fmt: skip
        subprocess.run(["docker", "image", "rm", self.image], capture_output=True, timeout=60)

    def logs(self) -> str:
        done = self.compose("logs", "--no-color", "--tail", str(LOG_LINES), check=False)
        return done.stdout + done.stderr

    def started_at(self, service: str) -> str:
        """When the service's container last started (a restart changes it)."""
        container = self.compose("ps", "-q", service).stdout.strip()
        done = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.StartedAt}}", container],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    @property
    def kafka_ports(self) -> list[int]:
        """The brokers' host ports, by node id (kafka, kafka-2, kafka-3)."""
        names = ("KAFKA_PORT", *CLUSTER_PORT_VARIABLES)
        return [self.ports[name] for name in names if name in self.ports]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports)

    @property
    def clientify_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['CLIENTIFY_SANDBOX_PORT']}/v1"

    @property
    def clientify_key(self) -> str:
        return CLIENTIFY_SANDBOX_KEY

    @asynccontextmanager
    async def odoo(self) -> AsyncIterator[OdooClient]:
        config = OdooConfig(
            url=f"http://127.0.0.1:{self.ports['ODOO_SANDBOX_PORT']}", db="odoo",
            login="admin", api_key=ODOO_SANDBOX_KEY,  # type: ignore[arg-type]
        )  # fmt: skip
        async with OdooClient(config) as client:
            yield client

    @asynccontextmanager
    async def clientify(self) -> AsyncIterator[ClientifyClient]:
        async with ClientifyClient(self.clientify_url, self.clientify_key) as client:
            yield client


@contextmanager
def running(stack: ComposeStack) -> Iterator[ComposeStack]:
    """The stack up for the block; down with its volumes after it, failed or not, with
    the last lines of each service's log printed first when something failed."""
    require_docker()
    try:
        stack.up()
        yield stack
    except BaseException:
        print(f"--- docker compose logs (last {LOG_LINES} lines a service)\n{stack.logs()}")
        raise
    finally:
        stack.down()
        print(f"compose project {stack.project}: {stack.seconds}")


async def converge(stack: Systems, changes: Changes, within: float) -> float:
    """Seconds until both sandboxes hold exactly what the changes imply, each record
    once; fails with what still differs after `within`."""
    started = time.monotonic()
    while problems := await differences(stack, changes):
        late = time.monotonic() - started > within
        assert not late, f"{len(problems)} differences after {within:.0f}s, e.g. {problems[:10]}"
        await asyncio.sleep(2)
    return time.monotonic() - started


async def no_dead_letters(bootstrap: str) -> None:
    letters = await topic_messages(bootstrap, Topics()[DEAD_LETTERS])
    assert not letters, [
        f"{d.command.entity} {d.command.business_key}: {d.reason}"
        for d in letters
        if isinstance(d, DeadLetter)
    ]
