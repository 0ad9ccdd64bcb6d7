"""HTTP routes of the authors context: validate, call one use case, shape the response."""

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security, status
from pydantic import AfterValidator, Field

from library.authors.api.schemas import AuthorCreate, AuthorOut, AuthorPatch
from library.authors.application.queries import AuthorQueries
from library.authors.application.services import AuthorService, RegisterAuthor, ReviseAuthor
from library.authors.domain.model import NAME_MAX_LENGTH, Author
from shared.kernel.pagination import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from shared.kernel.preconditions import IfMatch
from shared.kernel.values import search_text
from shared.web.api import DIGITS_ONLY, PageOut, RouteParameters, domain_rule
from shared.web.auth import ADMIN, READ, WRITE, Authorization, Principal
from shared.web.http import (
    NEXT_PAGE,
    NOT_MODIFIED,
    IfNoneMatchHeader,
    NewResource,
    RoutePath,
    created,
    etag,
    not_modified,
    origin_of,
    page_response,
    parse_if_match,
)
from shared.web.problems import problem_responses
from shared.web.responses import JsonResponse

IfMatchParam = Annotated[IfMatch, Depends(parse_if_match)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), DIGITS_ONLY]


# GET one author: the id and If-None-Match read in one pass, as GET one book's (RouteParameters).
GET_PARAMETERS = RouteParameters(
    "/{author_id}", author_id=Annotated[uuid.UUID, Path()], if_none_match=IfNoneMatchHeader
)
# POST, the write: its body and Idempotency-Key read the same way (NewResource).
NEW_AUTHOR = NewResource(AuthorCreate, "/authors")
# The component schemas those routes' openapi_extra refer to (the app adds them to its document).
SCHEMAS = NEW_AUTHOR.schemas


def add_routes(
    router: APIRouter,
    prefix: str,
    queries: AuthorQueries,
    service: Callable[[], AuthorService],
    auth: Authorization,
) -> None:
    """Add the authors routes under ``prefix`` to ``router`` (the app's own: routes of an included
    router are matched twice per request), answered by ``queries`` (reads) and a fresh
    ``service()`` (writes)."""
    # Writes need a token with the operation's scope; reads only when so configured.
    reader = [] if auth.read is None else [Security(auth.read, scopes=[READ])]
    read_statuses = () if auth.read is None else (401, 403)
    author_path = RoutePath("get_author", "author_id")

    def new_author_response(
        request: Request, author: Author, *, replayed: bool = False
    ) -> Response:
        # Fresh or replayed, a new author's 201 is built here, from the author, the same way.
        location = author_path(request, author.id)
        return created(
            AuthorOut.model_validate(author),
            location=location,
            version=author.version,
            replayed=replayed,
        )

    @router.post(
        f"{prefix}/authors",
        tags=["authors"],
        status_code=status.HTTP_201_CREATED,
        response_model=AuthorOut,
        responses=problem_responses(401, 403, 409, 413, 422, 503),
        openapi_extra=NEW_AUTHOR.openapi_extra(auth.write),
    )
    async def create_author(request: Request) -> Response:
        """Add an author to the catalog (safe to retry with an Idempotency-Key)."""
        new = await NEW_AUTHOR.read(request, auth.write)
        command = RegisterAuthor(**new.body.values())
        if new.once is None:
            author = await service().register_author(command, origin=new.origin)
            return new_author_response(request, author)
        result = await service().register_author(command, new.once, new.origin)
        return new_author_response(request, result.value, replayed=result.replayed)

    @router.get(
        f"{prefix}/authors",
        tags=["authors"],
        response_model=PageOut[AuthorOut],
        responses={200: {"headers": NEXT_PAGE}, **problem_responses(*read_statuses, 422, 503)},
        dependencies=reader,
    )
    async def list_authors(
        request: Request,
        q: Annotated[
            str | None,
            Query(
                max_length=NAME_MAX_LENGTH,
                description=(
                    "Search: names containing q (case and accents ignored, % and _ literal) or, "
                    "from 3 characters, a word close to it ('tolkein' finds 'J.R.R. Tolkien'); "
                    "best match first."
                ),
            ),
            AfterValidator(domain_rule(search_text)),
        ] = None,
        limit: Annotated[PageSize, Query()] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[
            str | None,
            Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page."),
        ] = None,
    ) -> Response:
        """A page of authors: in name order, or best match first with q."""
        return page_response(request, await queries.list_authors(q=q, limit=limit, cursor=cursor))

    @router.get(
        f"{prefix}/authors/{{author_id}}",
        tags=["authors"],
        response_model=AuthorOut,
        responses={**NOT_MODIFIED, **problem_responses(*read_statuses, 404, 422, 503)},
        dependencies=reader,
        openapi_extra=GET_PARAMETERS.openapi_extra,
    )
    async def get_author(request: Request) -> Response:
        """One author; their ETag is their version."""
        params = GET_PARAMETERS.parse(request)
        author = await queries.get_author(params["author_id"])
        unchanged = not_modified(params["if_none_match"], author["version"])
        if unchanged is not None:
            return unchanged
        return JsonResponse(author, headers={"ETag": etag(author["version"])})

    @router.patch(
        f"{prefix}/authors/{{author_id}}",
        tags=["authors"],
        response_model=AuthorOut,
        responses=problem_responses(401, 403, 404, 409, 412, 413, 422, 428, 503),
    )
    async def update_author(
        principal: Annotated[Principal, Security(auth.write, scopes=[WRITE])],
        author_id: uuid.UUID,
        body: AuthorPatch,
        request: Request,
        response: Response,
        if_match: IfMatchParam,
    ) -> AuthorOut:
        """Change some of an author's fields (If-Match required)."""
        author = await service().revise_author(
            author_id, ReviseAuthor(**body.given()), if_match, origin_of(request, principal)
        )
        response.headers["ETag"] = etag(author.version)
        return AuthorOut.model_validate(author)

    @router.delete(
        f"{prefix}/authors/{{author_id}}",
        tags=["authors"],
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problem_responses(401, 403, 404, 409, 412, 422, 428, 503),
    )
    async def delete_author(
        principal: Annotated[Principal, Security(auth.admin, scopes=[ADMIN])],
        author_id: uuid.UUID,
        request: Request,
        if_match: IfMatchParam,
    ) -> Response:
        """Remove an author who is credited on no book (If-Match required)."""
        await service().delete_author(author_id, if_match, origin_of(request, principal))
        return Response(status_code=status.HTTP_204_NO_CONTENT)
