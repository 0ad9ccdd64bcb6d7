"""HTTP routes of the authors context: validate, call one use case, shape the response."""

import uuid
from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AfterValidator

from library.authors.api.schemas import AuthorCreate, AuthorOut, AuthorPatch
from library.authors.application.services import AuthorService, RegisterAuthor, ReviseAuthor
from library.authors.domain.model import NAME_MAX_LENGTH
from shared.api import PageOut, domain_rule
from shared.pagination import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from shared.problems import problem_responses
from shared.values import search_text

router = APIRouter(prefix="/authors", tags=["authors"])

Service = Annotated[AuthorService, Depends(Provide["authors.service"])]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AuthorOut,
    responses=problem_responses(422, 503),
)
@inject
async def create_author(
    body: AuthorCreate, request: Request, response: Response, service: Service
) -> AuthorOut:
    """Add an author to the catalog."""
    author = await service.register_author(RegisterAuthor(**body.values()))
    response.headers["Location"] = request.url_for("get_author", author_id=author.id).path
    return AuthorOut.model_validate(author)


@router.get("", response_model=PageOut[AuthorOut], responses=problem_responses(422, 503))
@inject
async def list_authors(
    service: Service,
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
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page."),
    ] = None,
) -> PageOut[AuthorOut]:
    """A page of authors: in name order, or best match first with q."""
    page = await service.list_authors(q=q, limit=limit, cursor=cursor)
    return PageOut[AuthorOut](
        items=[AuthorOut.model_validate(a) for a in page.items], next_cursor=page.next_cursor
    )


@router.get("/{author_id}", response_model=AuthorOut, responses=problem_responses(404, 422, 503))
@inject
async def get_author(author_id: uuid.UUID, service: Service) -> AuthorOut:
    """One author."""
    return AuthorOut.model_validate(await service.get_author(author_id))


@router.patch(
    "/{author_id}", response_model=AuthorOut, responses=problem_responses(404, 409, 422, 503)
)
@inject
async def update_author(author_id: uuid.UUID, body: AuthorPatch, service: Service) -> AuthorOut:
    """Change some of an author's fields."""
    return AuthorOut.model_validate(
        await service.revise_author(author_id, ReviseAuthor(**body.given()))
    )


@router.delete(
    "/{author_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409, 422, 503),
)
@inject
async def delete_author(author_id: uuid.UUID, service: Service) -> Response:
    """Remove an author who is credited on no book."""
    await service.delete_author(author_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
