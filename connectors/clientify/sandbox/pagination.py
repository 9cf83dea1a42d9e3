"""DRF's PageNumberPagination as Clientify configures it: 20 per page, `page_size` <= 100."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yarl import URL

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class InvalidPage(Exception):
    """The `page` parameter is not a page of this list; DRF answers 404 "Invalid page."."""


def page_size(raw: str | None) -> int:
    """DRF ignores a bad `page_size` (default size) and clamps a big one to the maximum."""
    try:
        size = int(raw) if raw is not None else DEFAULT_PAGE_SIZE
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)


def paginate(items: Sequence[Any], url: URL) -> tuple[list[Any], dict[str, Any]]:
    """(the page's items, the envelope without `results`) for the request `url`."""
    size = page_size(url.query.get("page_size"))
    raw_page = url.query.get("page", "1")
    pages = max(1, -(-len(items) // size))
    try:
        number = int(raw_page)
    except ValueError:
        raise InvalidPage from None
    if not 1 <= number <= pages:
        raise InvalidPage
    start = (number - 1) * size

    def link(target: int) -> str | None:
        if not 1 <= target <= pages or target == number:
            return None
        if target == 1:
            # DRF drops `page` from the link to the first page.
            return str(url.without_query_params("page"))
        return str(url.update_query(page=target))

    envelope = {"count": len(items), "next": link(number + 1), "previous": link(number - 1)}
    return list(items[start : start + size]), envelope
