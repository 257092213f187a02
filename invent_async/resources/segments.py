"""``client.segments``: every segments endpoint, each one declared once and called as build ->
send -> parse (the endpoint builds the request, the pipeline sends it, the converter parses)."""

from __future__ import annotations

from .._endpoints import Endpoint
from .._models import Segment, SegmentColor, SegmentCreate, SegmentUpdate
from .._pagination import AsyncPager
from .._pipeline import Pipeline
from .._types import UNSET, Unset

__all__ = ["AsyncSegments"]

LIST = Endpoint("GET", "/orgs/{org_id}/segments", "segments.list")
GET = Endpoint("GET", "/orgs/{org_id}/segments/{segment_id}", "segments.get", inferred=True)
CREATE = Endpoint(
    "POST", "/orgs/{org_id}/segments", "segments.create", idempotent=False, inferred=True
)
UPDATE = Endpoint("PATCH", "/orgs/{org_id}/segments/{segment_id}", "segments.update")
DELETE = Endpoint(
    "DELETE", "/orgs/{org_id}/segments/{segment_id}", "segments.delete", inferred=True
)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 128:
        raise ValueError("a segment name must be a string of 1 to 128 characters")
    return name


class AsyncSegments:
    """Segments of the client's organisation: ``client.segments``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._prefix = pipeline.prefix  # "/orgs/{org}", encoded once

    @LIST.documents
    def list(
        self,
        *,
        search: str | None = None,
        exclude_board_columns: bool | None = None,
        take: int = 100,
        page: int = 1,
    ) -> AsyncPager[Segment]:
        """List segments with the board columns that use them.

        Args:
            search: Search by segment name (the filter's name is inferred; the docs do not
                render it).
            exclude_board_columns: Leave out segments used as board columns.
            take: Page size, 1 to 100.
            page: First page to fetch (1-based).

        Returns:
            An async-iterable pager over the segments (no request is made until you iterate).
        """
        params = {"search": search, "exclude_board_columns": exclude_board_columns}
        first = LIST.request(self._prefix)
        return self._pipeline.paginate(first, params, Segment, take=take, page=page)

    @GET.documents
    async def get(self, segment_id: str) -> Segment:
        """Fetch one segment.

        Inferred endpoint: the published docs do not show it; it follows the API's REST
        conventions.

        Args:
            segment_id: The segment.
        """
        return await self._pipeline.call(GET.request(self._prefix, segment_id), Segment)

    @CREATE.documents
    async def create(self, name: str, *, color: SegmentColor | str | Unset = UNSET) -> Segment:
        """Create a segment.

        Inferred endpoint: the published docs do not show it; the body mirrors the documented
        update. Not idempotent: retried only when the request certainly did not reach the
        server.

        Args:
            name: Segment name, 1 to 128 characters.
            color: One of the 17 :class:`SegmentColor` values, as a member or its string
                (``"red"``); the server picks one if left out.

        Returns:
            The created segment.
        """
        body = SegmentCreate(name=_check_name(name), color=_color(color))
        return await self._pipeline.call(CREATE.request(self._prefix, body=body), Segment)

    @UPDATE.documents
    async def update(
        self,
        segment_id: str,
        *,
        name: str | Unset = UNSET,
        color: SegmentColor | str | Unset = UNSET,
    ) -> Segment:
        """Rename or recolour a segment.

        Args:
            segment_id: The segment.
            name: New name, 1 to 128 characters.
            color: New colour: a :class:`SegmentColor` member or its string (``"red"``).

        Returns:
            The updated segment, with its boards.
        """
        if name is UNSET and color is UNSET:
            raise ValueError("update() needs name or color")
        body = SegmentUpdate(name=name if name is UNSET else _check_name(name), color=_color(color))
        request = UPDATE.request(self._prefix, segment_id, body=body)
        return await self._pipeline.call(request, Segment)

    @DELETE.documents
    async def delete(self, segment_id: str) -> None:
        """Delete a segment.

        Inferred endpoint: the published docs do not show it; it follows the API's REST
        conventions. The response body is not relied on.

        Args:
            segment_id: The segment.
        """
        await self._pipeline.send(DELETE.request(self._prefix, segment_id))


def _color(color: SegmentColor | str | Unset) -> SegmentColor | Unset:
    if color is UNSET:
        return color
    try:
        return SegmentColor(color)
    except ValueError:
        known = ", ".join(c.value for c in SegmentColor)
        raise ValueError(f"unknown segment colour {color!r}; expected one of: {known}") from None
