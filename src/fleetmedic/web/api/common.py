"""What the API's routers share: paging parameters and the cache-state header."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Query, Response

from fleetmedic.web.cache import Cached

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000
CACHE_HEADER = "X-Fleetmedic-Cache"


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


def paging(
    limit: int = Query(
        50, ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT})."
    ),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Items to skip."),
) -> Paging:
    return Paging(limit, offset)


def json_response(found: Cached) -> Response:
    """Cached JSON bytes as they are: no re-validation, no re-serialisation per request."""
    response = Response(found.value, media_type="application/json")
    mark(response, found)
    return response


def mark(response: Response, found: Cached) -> None:
    """Say how the answer was obtained: hit, stale (refreshing), miss (computed now) or off."""
    response.headers[CACHE_HEADER] = found.state
    response.headers["X-Fleetmedic-Age"] = f"{found.age_seconds:.1f}"
