"""The worker as a process of its own, started and stopped by a test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.project import REPO


class Worker:
    def __init__(self, bootstrap: str, prefix: str, tmp: Path, partitions: int = 1) -> None:
        self.env = {
            **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix,
        }  # fmt: skip
        self.argv = [
            sys.executable, "-m", "clientify_odoo", "worker", "--partitions", str(partitions),
            "--data-dir", str(tmp / "state"), "--faust-log-level", "info",
            "--metrics-port", "0",  # no port shared with other runs
        ]  # fmt: skip
        self.log = tmp / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, cwd=REPO, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        assert self.process is not None
        if self.exited():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @contextlib.contextmanager
    def running(self) -> Iterator[Worker]:
        """The worker started for the block, stopped after it (or after a failure)."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]
