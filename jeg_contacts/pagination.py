"""The page number a list was asked for, bounded so no query argument reaches the database raw."""

from flask import request

# Far past any real list; a larger number would overflow the database's integer arithmetic.
MAX_PAGE = 100_000


def requested_page(max_page: int = MAX_PAGE) -> int:
    """The `page` query argument as a page number from 1 to `max_page` (1 if absent or bad)."""
    return min(max(request.args.get("page", 1, type=int), 1), max_page)
