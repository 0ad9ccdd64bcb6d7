"""HTTP routes of the books context: validate, call one use case, shape the response."""

import uuid
from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AfterValidator

from library.books.api.schemas import BookCreate, BookOut, BookPatch
from library.books.application.services import AddBook, BookService, ListBooks, ReviseBook
from library.books.domain.model import LANGUAGE_MAX_LENGTH, TITLE_MAX_LENGTH, valid_language
from library.books.domain.repository import BookFilter, BookSort
from shared.api import PageOut, domain_rule
from shared.pagination import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from shared.problems import problem_responses
from shared.values import EARLIEST_YEAR, search_text

router = APIRouter(tags=["books"])

Service = Annotated[BookService, Depends(Provide["books.service"])]
QueryText = Annotated[
    str | None,
    Query(max_length=TITLE_MAX_LENGTH, description="Case-insensitive substring of the title."),
    AfterValidator(domain_rule(search_text)),
]
LanguageFilter = Annotated[
    str | None,
    Query(
        max_length=LANGUAGE_MAX_LENGTH, description="Books in this language (any accepted form)."
    ),
    AfterValidator(domain_rule(valid_language)),
]
YearBound = Annotated[int | None, Query(ge=EARLIEST_YEAR, le=9999)]
Sort = Annotated[BookSort, Query(description="Order; '-' means descending. Ties break on id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page.")
]


@router.post(
    "/books",
    status_code=status.HTTP_201_CREATED,
    response_model=BookOut,
    responses=problem_responses(409, 422, 503),
)
@inject
async def create_book(
    body: BookCreate, request: Request, response: Response, service: Service
) -> BookOut:
    """Add a book crediting existing authors."""
    view = await service.add_book(AddBook(**body.values()))
    response.headers["Location"] = request.url_for("get_book", book_id=view.book.id).path
    return BookOut.of(view)


@router.get("/books", response_model=PageOut[BookOut], responses=problem_responses(422, 503))
@inject
async def list_books(
    service: Service,
    q: QueryText = None,
    author_id: Annotated[
        uuid.UUID | None, Query(description="Books crediting this author.")
    ] = None,
    language: LanguageFilter = None,
    year_from: YearBound = None,
    year_to: YearBound = None,
    sort: Sort = BookSort.CREATED_AT,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> PageOut[BookOut]:
    """A page of books."""
    f = BookFilter(
        q=q or None, author_id=author_id, language=language, year_from=year_from, year_to=year_to
    )
    page = await service.list_books(ListBooks(filter=f, sort=sort, limit=limit, cursor=cursor))
    return PageOut[BookOut](items=[BookOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.get(
    "/authors/{author_id}/books",
    response_model=PageOut[BookOut],
    responses=problem_responses(404, 422, 503),
    tags=["authors"],
)
@inject
async def list_author_books(
    author_id: uuid.UUID,
    service: Service,
    q: QueryText = None,
    language: LanguageFilter = None,
    year_from: YearBound = None,
    year_to: YearBound = None,
    sort: Sort = BookSort.CREATED_AT,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> PageOut[BookOut]:
    """A page of the books crediting this author."""
    f = BookFilter(q=q or None, language=language, year_from=year_from, year_to=year_to)
    page = await service.list_author_books(
        author_id, ListBooks(filter=f, sort=sort, limit=limit, cursor=cursor)
    )
    return PageOut[BookOut](items=[BookOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/books/{book_id}", response_model=BookOut, responses=problem_responses(404, 422, 503))
@inject
async def get_book(book_id: uuid.UUID, service: Service) -> BookOut:
    """One book with its authors in credit order."""
    return BookOut.of(await service.get_book(book_id))


@router.patch(
    "/books/{book_id}", response_model=BookOut, responses=problem_responses(404, 409, 422, 503)
)
@inject
async def update_book(book_id: uuid.UUID, body: BookPatch, service: Service) -> BookOut:
    """Change some of a book's fields; author_ids replaces the credit list."""
    return BookOut.of(await service.revise_book(book_id, ReviseBook(**body.given())))


@router.delete(
    "/books/{book_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409, 422, 503),
)
@inject
async def delete_book(book_id: uuid.UUID, service: Service) -> Response:
    """Remove a book and its credits."""
    await service.delete_book(book_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
