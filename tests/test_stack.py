"""`clientify-odoo up` starts the local broker when no cluster is configured, and Ctrl-C
stops it (the rest of `up`: test_up_stack.py)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clientify_odoo.stack.broker import LocalBroker, free_port_pair

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parent.parent


def wait_for_line(process: subprocess.Popen[str], text: str, within: float) -> list[str]:
    """Lines printed until one contains `text`; fails with the output if it never does."""
    lines = _lines_of(process)
    seen: list[str] = []
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never printed; output was:\n{''.join(seen)}")


_readers: dict[int, queue.Queue[str | None]] = {}


def _lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """A queue fed by a thread reading the process's stdout (select() can't see lines
    already in Python's buffer)."""
    if process.pid not in _readers:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        _readers[process.pid] = lines
    return _readers[process.pid]


def rest_of_output(process: subprocess.Popen[str], within: float) -> str:
    process.wait(timeout=within)
    lines = _lines_of(process)
    out: list[str] = []
    while (line := lines.get(timeout=within)) is not None:
        out.append(line)
    return "".join(out)


def run_up(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(extra)
    return env


def test_up_starts_the_local_broker_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port_pair()
    data_dir = tmp_path / "kafka"
    argv = [
        sys.executable, "-m", "clientify_odoo", "up", "--port", str(port),
        "--data-dir", str(data_dir), "--stack-dir", str(tmp_path / "stack"), "--seed", "0",
        "--odoo-port", str(free_port_pair()), "--clientify-port", str(free_port_pair()),
        "--webhook-port", str(free_port_pair()), "--no-metrics",
    ]  # fmt: skip
    process = run_up(argv, base_env())
    broker = LocalBroker(data_dir=data_dir, port=port)
    try:
        wait_for_line(process, "healthy", within=120)
        assert broker.pid() is not None
    finally:
        process.send_signal(signal.SIGINT)
        rest = rest_of_output(process, within=90)
    assert process.returncode == 0, rest
    assert "Kafka stopped" in rest
    assert broker.pid() is None
    assert (data_dir / "kraft" / "meta.properties").exists()  # data kept for the next run
