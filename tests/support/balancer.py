"""What a load balancer (a Kubernetes Service, a reverse proxy) does in front of several
webhook receivers: each request to the next copy, and to the one after it when that one
does not answer (killed, restarting). Run as its own process by `SyncStack` when the
stack has copies of every service:

    python -m tests.support.balancer --port 8787 --upstream 20001 --upstream 20003
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import AsyncIterator

from aiohttp import ClientConnectionError, ClientSession, ClientTimeout, web

# Headers a proxy must not copy from one connection to the next.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
SESSION = web.AppKey("session", ClientSession)


def create_app(upstreams: list[int]) -> web.Application:
    turns = itertools.cycle(upstreams)

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        session = request.app[SESSION]
        for _ in upstreams:
            url = f"http://127.0.0.1:{next(turns)}{request.path_qs}"
            try:
                async with session.request(
                    request.method, url, data=body, headers=headers
                ) as reply:
                    kept = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_BY_HOP}
                    return web.Response(status=reply.status, body=await reply.read(), headers=kept)
            except ClientConnectionError:
                continue  # that copy is down: the next one
        return web.Response(status=502, text="no webhook receiver answers")

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = ClientSession(timeout=ClientTimeout(total=30))
        yield
        await app[SESSION].close()

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=int, action="append", required=True)
    args = parser.parse_args()
    web.run_app(create_app(args.upstream), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
