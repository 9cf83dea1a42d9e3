"""Run an aiohttp application in the foreground until Ctrl-C or SIGTERM, cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    on_started: Callable[[int], Awaitable[None] | None] | None = None,
) -> None:
    """Serve `app`; `on_started(port)` runs once it listens (port 0 picks a free one)."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    bound = port
    if server is not None and server.sockets:  # type: ignore[attr-defined]
        bound = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_started is not None:
            result = on_started(bound)
            if result is not None:
                await result
        await stop.wait()
    finally:
        await runner.cleanup()
