"""HTTP route of the change feed: GET /changes."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, Security
from pydantic import Field

from library.changes.api.schemas import ChangePage, FeedStart
from library.changes.application.queries import MAX_WAIT_SECONDS, ChangeFeed
from shared.kernel.pagination import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE, Page
from shared.web.api import DIGITS_ONLY
from shared.web.auth import ADMIN, READ, Authorization, principal_of
from shared.web.http import NEXT_PAGE, page_response
from shared.web.problems import problem_responses

PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), DIGITS_ONLY]
WaitSeconds = Annotated[int, Field(ge=0, le=MAX_WAIT_SECONDS), DIGITS_ONLY]


def create_router(feed: ChangeFeed, auth: Authorization) -> APIRouter:
    """The change feed's route, answered by ``feed``."""
    reader = [] if auth.read is None else [Security(auth.read, scopes=[READ])]
    read_statuses = () if auth.read is None else (401, 403)
    router = APIRouter(prefix="/changes", tags=["changes"])
    authenticator = auth.admin.authenticator

    async def sees_actor(request: Request) -> bool:
        if authenticator is None:  # tokens off (development): everyone is the admin
            return True
        principal = await principal_of(request.scope, authenticator)
        return principal is not None and ADMIN in principal.scopes

    @router.get(
        "",
        response_model=ChangePage,
        responses={200: {"headers": NEXT_PAGE}, **problem_responses(*read_statuses, 410, 422, 503)},
        dependencies=reader,
    )
    async def list_changes(
        request: Request,
        cursor: Annotated[
            str | None,
            Query(
                max_length=MAX_CURSOR_LENGTH,
                description="next_cursor of the previous page (from the first event without).",
            ),
        ] = None,
        limit: Annotated[PageSize, Query()] = DEFAULT_PAGE_SIZE,
        resource_id: Annotated[
            uuid.UUID | None, Query(description="Only this author's or book's events.")
        ] = None,
        start: Annotated[
            FeedStart | None,
            Query(
                description=(
                    "latest: no events, and a next_cursor at the end of the feed now (to "
                    "follow changes from now on). Not with cursor."
                )
            ),
        ] = None,
        wait: Annotated[
            WaitSeconds,
            Query(
                description=(
                    "Long poll: when nothing is new, answer as soon as something is, or with "
                    f"an empty page after this many seconds (at most {MAX_WAIT_SECONDS})."
                )
            ),
        ] = 0,
    ) -> Response:
        """The catalog's changes in commit order: each event once, to a reader who follows
        next_cursor (which is never null)."""
        page = await feed.page(
            cursor=cursor,
            limit=limit,
            resource_id=resource_id,
            latest=start is FeedStart.LATEST,
            wait=wait,
        )
        if await sees_actor(request):
            items = [event.document for event in page.items]
        else:
            items = [
                {k: v for k, v in event.document.items() if k != "actor"} for event in page.items
            ]
        return page_response(request, Page(items=items, next_cursor=page.next_cursor))

    return router
