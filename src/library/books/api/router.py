"""HTTP routes of the books context: validate, call one use case, shape the response."""

import uuid
from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Query, Request, Response, status

from library.books.api.schemas import (
    BookCreate,
    BookListParams,
    BookOut,
    BookPatch,
    BookSearchParams,
)
from library.books.application.services import AddBook, BookService, BookView, ReviseBook
from shared.kernel.idempotency import StoredResponse
from shared.kernel.preconditions import IfMatch
from shared.web.api import PageOut
from shared.web.http import (
    NOT_MODIFIED,
    IdempotencyKeyHeader,
    IfNoneMatchHeader,
    created,
    etag,
    idempotency,
    not_modified,
    parse_if_match,
    send,
)
from shared.web.problems import problem_responses

router = APIRouter(tags=["books"])

Service = Annotated[BookService, Depends(Provide["books.service"])]
IfMatchParam = Annotated[IfMatch, Depends(parse_if_match)]


@router.post(
    "/books",
    status_code=status.HTTP_201_CREATED,
    response_model=BookOut,
    responses=problem_responses(409, 413, 422, 503),
)
@inject
async def create_book(
    body: BookCreate,
    request: Request,
    service: Service,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Add a book crediting existing authors (safe to retry with an Idempotency-Key)."""

    def respond(view: BookView) -> StoredResponse:
        location = request.url_for("get_book", book_id=view.book.id).path
        return created(BookOut.of(view), location=location, version=view.book.version)

    command = AddBook(**body.values())
    once = idempotency(request, idempotency_key, body, respond)
    if once is None:
        return send(respond(await service.add_book(command)))
    return send(await service.add_book(command, once))


@router.get("/books", response_model=PageOut[BookOut], responses=problem_responses(422, 503))
@inject
async def list_books(
    service: Service, params: Annotated[BookSearchParams, Query()]
) -> PageOut[BookOut]:
    """A page of books."""
    page = await service.list_books(params.to_request())
    return PageOut[BookOut](items=[BookOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.get(
    "/authors/{author_id}/books",
    response_model=PageOut[BookOut],
    responses=problem_responses(404, 422, 503),
    tags=["authors"],
)
@inject
async def list_author_books(
    author_id: uuid.UUID, service: Service, params: Annotated[BookListParams, Query()]
) -> PageOut[BookOut]:
    """A page of the books crediting this author."""
    page = await service.list_author_books(author_id, params.to_request())
    return PageOut[BookOut](items=[BookOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.get(
    "/books/{book_id}",
    response_model=BookOut,
    responses={**NOT_MODIFIED, **problem_responses(404, 422, 503)},
)
@inject
async def get_book(
    book_id: uuid.UUID,
    response: Response,
    service: Service,
    if_none_match: IfNoneMatchHeader = None,
) -> BookOut | Response:
    """One book with its authors in credit order; its ETag is its version."""
    view = await service.get_book(book_id)
    unchanged = not_modified(if_none_match, view.book.version)
    if unchanged is not None:
        return unchanged
    response.headers["ETag"] = etag(view.book.version)
    return BookOut.of(view)


@router.patch(
    "/books/{book_id}",
    response_model=BookOut,
    responses=problem_responses(404, 409, 412, 413, 422, 428, 503),
)
@inject
async def update_book(
    book_id: uuid.UUID,
    body: BookPatch,
    response: Response,
    service: Service,
    if_match: IfMatchParam,
) -> BookOut:
    """Change some of a book's fields (If-Match required); author_ids replaces the credit list."""
    view = await service.revise_book(book_id, ReviseBook(**body.given()), if_match)
    response.headers["ETag"] = etag(view.book.version)
    return BookOut.of(view)


@router.delete(
    "/books/{book_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409, 412, 422, 428, 503),
)
@inject
async def delete_book(book_id: uuid.UUID, service: Service, if_match: IfMatchParam) -> Response:
    """Remove a book and its credits (If-Match required)."""
    await service.delete_book(book_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
