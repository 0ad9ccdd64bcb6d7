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
from library.books.application.services import AddBook, BookService, ReviseBook
from shared.api import PageOut
from shared.problems import problem_responses

router = APIRouter(tags=["books"])

Service = Annotated[BookService, Depends(Provide["books.service"])]


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
