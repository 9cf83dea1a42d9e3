"""Run the stack's services as one supervised group of child processes.

Each service is a `clientify-odoo` sub-command in its own process, exactly as compose
runs it, so what `up` shows is what production does. The supervisor starts them in
order, writes each one's output to its own log file, restarts one that dies with an
exponential backoff (a crash loop must not spin the CPU, and the view must show it),
and stops them in the given order: the producers first so that nothing new enters,
then the worker and the writers so that what did enter is processed and committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
HEALTHY_AFTER = 60.0  # a service up this long starts its backoff from scratch
STOP_GRACE = 30.0  # seconds between SIGTERM and SIGKILL
ERROR_MARKERS = ("ERROR", "CRITICAL", "error:")
# The time `clientify_odoo.logs` starts each line with: the view has its own clock.
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} +")


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: Sequence[str]  # the sub-command and its flags, after `clientify-odoo`
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the parent's


class ServiceState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class ServiceStatus:
    """What the live view shows of one service."""

    name: str
    state: ServiceState = ServiceState.STARTING
    pid: int | None = None
    started_at: float | None = None
    restarts: int = 0
    last_exit: int | None = None
    last_error: str | None = None
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=20))


class Supervisor:
    def __init__(self, specs: Sequence[ServiceSpec], log_dir: Path, env: Mapping[str, str]):
        self.specs = {spec.name: spec for spec in specs}
        self.log_dir = log_dir
        self.env = dict(env)
        self.status = {spec.name: ServiceStatus(spec.name) for spec in specs}
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[str] = set()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    async def start(self, name: str) -> None:
        """Start `name` and keep it running until `stop`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        await self._spawn(name)
        self._watchers[name] = asyncio.create_task(self._watch(name), name=f"watch-{name}")

    async def _spawn(self, name: str) -> None:
        spec, status = self.specs[name], self.status[name]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clientify_odoo", *spec.argv,
            env={**os.environ, **self.env, **spec.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group: Ctrl-C in the terminal reaches only the supervisor,
            # which then stops the services in order instead of all at once.
            start_new_session=True,
        )  # fmt: skip
        self._processes[name] = process
        status.pid, status.started_at = process.pid, time.monotonic()
        status.state = ServiceState.RUNNING

    async def _watch(self, name: str) -> None:
        status, backoff = self.status[name], FIRST_BACKOFF
        while True:
            process = self._processes[name]
            cause = await self._copy_output(name, process)
            code = await process.wait()
            status.last_exit, status.pid = code, None
            if name in self._stopping:
                status.state = ServiceState.STOPPED
                return
            ran = time.monotonic() - (status.started_at or 0.0)
            backoff = FIRST_BACKOFF if ran >= HEALTHY_AFTER else backoff
            status.state, status.restarts = ServiceState.RESTARTING, status.restarts + 1
            crash = f"exited with code {code} after {ran:.0f}s; restarting in {backoff:.0f}s"
            # This run's own error only: an earlier crash's text would nest in each new one.
            status.last_error = f"{crash}: {cause}" if cause else crash
            log.warning("%s %s (log: %s)", name, crash, self.log_path(name))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            if name in self._stopping:
                status.state = ServiceState.STOPPED
                return
            await self._spawn(name)

    async def _copy_output(self, name: str, process: asyncio.subprocess.Process) -> str | None:
        """Copy the output to the log until the process ends, showing each error line as
        the service's last error; returns the last one of this run."""
        status, error, in_traceback = self.status[name], None, False
        assert process.stdout is not None
        with self.log_path(name).open("ab") as sink:
            async for raw in process.stdout:
                sink.write(raw)
                sink.flush()
                line = raw.decode(errors="replace").rstrip()
                if not line:
                    continue
                status.recent.append(line)
                if line.startswith("Traceback"):
                    in_traceback = True
                elif in_traceback and not line[0].isspace():
                    # The first line after a traceback's indented frames names the
                    # exception: more use than "Traceback (most recent call last):".
                    in_traceback = False
                    error = status.last_error = line
                elif any(marker in line for marker in ERROR_MARKERS):
                    error = status.last_error = " ".join(LOG_TIME.sub("", line).split())
        return error

    async def stop(self, order: Sequence[str]) -> None:
        """Stop the services, each group of `order` fully before the next."""
        for name in order:
            await self._stop_one(name)

    async def _stop_one(self, name: str) -> None:
        if name not in self._watchers:
            return
        self._stopping.add(name)
        status, process = self.status[name], self._processes.get(name)
        status.state = ServiceState.STOPPING
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                log.warning("%s did not stop within %.0fs: killed", name, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        watcher = self._watchers.pop(name)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        status.state, status.pid = ServiceState.STOPPED, None
