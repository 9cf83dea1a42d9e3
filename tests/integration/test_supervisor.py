"""The supervisor of `up` with a real service process that cannot start: it is restarted
with backoff, and the view shows, on the service's one line, that it crashed and why."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from clientify_odoo.stack.supervisor import ServiceSpec, Supervisor
from clientify_odoo.stack.view import StackView
from clientify_odoo.status.flow_counts import FlowCounts
from tests.support.stack_fixtures import eventually
from tests.support.terminal import draw


async def test_a_crash_loop_shows_the_exception_of_its_last_run_on_one_line(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:  # the sandbox's port, held by someone else
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["sandbox", "clientify", "--port", port, "--data-dir", str(tmp_path / "data")]
        supervisor = Supervisor([ServiceSpec("clientify-sandbox", argv)], tmp_path / "logs", {})
        status = supervisor.status["clientify-sandbox"]
        await supervisor.start("clientify-sandbox")
        try:

            async def crashed_twice() -> bool:
                return status.restarts >= 2

            await eventually(crashed_twice, None, "two crashes of the sandbox", within=60)
            error = status.last_error or ""
        finally:
            await supervisor.stop(["clientify-sandbox"])
    # What happened, then the exception the traceback ends with (not "Traceback (most
    # recent call last):"), and only this run's: earlier crashes do not nest in it.
    assert error.startswith("exited with code 1 after "), error
    assert error.count("exited with code") == 1, error
    assert error.endswith(f"OSError: [Errno 98] error while attempting to bind on address "
                          f"('127.0.0.1', {port}): address already in use"), error  # fmt: skip
    assert "Traceback" in (tmp_path / "logs" / "clientify-sandbox.log").read_text()

    view = StackView("127.0.0.1:9092", {}, FlowCounts(), [status], time.monotonic())
    [row] = [line for line in draw(view, 100, 30) if "clientify-sandbox" in line]
    assert "exited with code 1" in row and row.rstrip(" │").endswith("…")
