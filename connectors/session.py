"""What both API clients share: an aiohttp session of their own, closed with them."""

from __future__ import annotations

from types import TracebackType

import aiohttp


class SessionClient:
    """A client that owns one aiohttp session (made when first needed) and closes it on
    `close()` or on leaving its `async with` block."""

    _session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
