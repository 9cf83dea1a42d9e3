"""`/metrics` and `/health` of a service, served from a thread of their own.

A thread rather than the service's event loop: the Faust worker owns its loop, the
others are asyncio programs, and a thread serves them all the same way with one call.
It also keeps answering when the service's loop is blocked, so `/health` can say
"no progress" instead of timing out.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Self
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, ThreadingWSGIServer

from schemas.health import ServiceHealth, exposition, health_answer

REASONS = {200: "200 OK", 404: "404 Not Found", 503: "503 Service Unavailable"}


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every few seconds would drown the service's own log."""


class MetricsServer:
    """The running server; `close()` (or leaving the `with`) stops it."""

    def __init__(
        self,
        health: ServiceHealth,
        host: str,
        port: int,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.health = health
        self.registry = registry
        self._server = make_server(
            host, port, self._app, server_class=_server_class(host), handler_class=_Quiet
        )
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"metrics-{health.service}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body, code, content_type = (
                exposition(self.health, self.registry),
                200,
                CONTENT_TYPE_LATEST,
            )
        elif path == "/health":
            code, answer = health_answer(self.health)
            body, content_type = json.dumps(answer).encode(), "application/json"
        else:
            body, code, content_type = b"try /metrics or /health\n", 404, "text/plain"
        start_response(REASONS[code], [("Content-Type", content_type)])
        return [body]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _server_class(host: str) -> type[ThreadingWSGIServer]:
    """socketserver reads the address family from the class: IPv6 for an IPv6 host."""
    family = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    return Server


def serve_metrics(health: ServiceHealth, host: str, port: int) -> MetricsServer | None:
    """Serve `/metrics` and `/health` of the service `health` describes on host:port,
    in a daemon thread; port 0 means "off" (returns None). Raises OSError when the port
    is taken, before the service starts its work."""
    if port == 0:
        return None
    return MetricsServer(health, host, port)
