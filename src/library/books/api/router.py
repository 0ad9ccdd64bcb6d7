"""HTTP routes of the books context: validate, call one use case, shape the response.

The routes close over objects built once at start-up (the queries, the service factory): no
dependency is resolved per request. Reads return their read models serialised once by orjson;
``response_model`` only documents them.
"""

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, Security, status
from fastapi.responses import JSONResponse

from library.books.api.schemas import (
    BookCreate,
    BookListParams,
    BookOut,
    BookPatch,
    BookSearchParams,
    book_document,
)
from library.books.application.queries import BookQueries
from library.books.application.services import AddBook, BookService, BookView, ReviseBook
from library.books.domain.errors import DuplicateIsbnError
from shared.kernel.preconditions import IfMatch
from shared.web.api import PageOut, QueryModel, RouteParameters
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
from shared.web.problems import domain_problem, problem_responses
from shared.web.responses import JsonResponse

IfMatchParam = Annotated[IfMatch, Depends(parse_if_match)]
# The lists' query parameters, validated in one pass (see QueryModel) and documented as FastAPI
# documents a query model.
LIST_QUERY = QueryModel(BookSearchParams)
AUTHOR_BOOKS_QUERY = QueryModel(BookListParams)
# GET one book, the busiest route: its id and If-None-Match read in one pass (RouteParameters).
GET_PARAMETERS = RouteParameters(
    "/books/{book_id}", book_id=Annotated[uuid.UUID, Path()], if_none_match=IfNoneMatchHeader
)
# POST, the write: its body and Idempotency-Key read the same way (NewResource).
NEW_BOOK = NewResource(BookCreate, "/books")
# The component schemas those routes' openapi_extra refer to (the app adds them to its document).
SCHEMAS = {**LIST_QUERY.schemas, **AUTHOR_BOOKS_QUERY.schemas, **NEW_BOOK.schemas}


async def duplicate_isbn_problem(request: Request, exc: Exception) -> JSONResponse:
    """The 409 of a taken ISBN, naming the book that holds it: ``existing_id`` and its path,
    ``existing`` (when the holder is known: it may have been removed since)."""
    if not isinstance(exc, DuplicateIsbnError):  # pragma: no cover - registered for this type
        raise exc
    if exc.existing_id is None:
        return domain_problem(request, exc)
    path = request.app.url_path_for("get_book", book_id=str(exc.existing_id))
    existing = f"{request.scope.get('root_path', '')}{path}"
    return domain_problem(request, exc, {"existing_id": str(exc.existing_id), "existing": existing})


# Problems this context's API words itself (the composition root registers them on the app).
EXCEPTION_HANDLERS = {DuplicateIsbnError: duplicate_isbn_problem}


def add_routes(
    router: APIRouter,
    prefix: str,
    queries: BookQueries,
    service: Callable[[], BookService],
    auth: Authorization,
) -> None:
    """Add the books routes under ``prefix`` to ``router`` (the app's own: routes of an included
    router are matched twice per request), answered by ``queries`` (reads) and a fresh
    ``service()`` (writes)."""
    # Writes need a token with the operation's scope; reads only when so configured.
    reader = [] if auth.read is None else [Security(auth.read, scopes=[READ])]
    read_statuses = () if auth.read is None else (401, 403)
    book_path = RoutePath("get_book", "book_id")

    def new_book_response(request: Request, view: BookView, *, replayed: bool = False) -> Response:
        # Fresh or replayed, a new book's 201 is built here, from its view, the same way.
        location = book_path(request, view.book.id)
        return created(
            book_document(view), location=location, version=view.book.version, replayed=replayed
        )

    @router.post(
        f"{prefix}/books",
        tags=["books"],
        status_code=status.HTTP_201_CREATED,
        response_model=BookOut,
        responses=problem_responses(401, 403, 409, 413, 422, 503),
        openapi_extra=NEW_BOOK.openapi_extra(auth.write),
    )
    async def create_book(request: Request) -> Response:
        """Add a book crediting existing authors (safe to retry with an Idempotency-Key)."""
        new = await NEW_BOOK.read(request, auth.write)
        command = AddBook(**new.body.values())
        if new.once is None:
            view = await service().add_book(command, origin=new.origin)
            return new_book_response(request, view)
        result = await service().add_book(command, new.once, new.origin)
        return new_book_response(request, result.value, replayed=result.replayed)

    @router.get(
        f"{prefix}/books",
        tags=["books"],
        response_model=PageOut[BookOut],
        responses={200: {"headers": NEXT_PAGE}, **problem_responses(*read_statuses, 422, 503)},
        dependencies=reader,
        openapi_extra=LIST_QUERY.openapi_extra,
    )
    async def list_books(request: Request) -> Response:
        """A page of books."""
        params = LIST_QUERY.parse(request)
        return page_response(request, await queries.list_books(params.to_request()))

    @router.get(
        f"{prefix}/authors/{{author_id}}/books",
        response_model=PageOut[BookOut],
        responses={200: {"headers": NEXT_PAGE}, **problem_responses(*read_statuses, 404, 422, 503)},
        dependencies=reader,
        tags=["books", "authors"],
        openapi_extra=AUTHOR_BOOKS_QUERY.openapi_extra,
    )
    async def list_author_books(author_id: uuid.UUID, request: Request) -> Response:
        """A page of the books crediting this author."""
        params = AUTHOR_BOOKS_QUERY.parse(request)
        page = await queries.list_author_books(author_id, params.to_request())
        return page_response(request, page)

    @router.get(
        f"{prefix}/books/{{book_id}}",
        tags=["books"],
        response_model=BookOut,
        responses={**NOT_MODIFIED, **problem_responses(*read_statuses, 404, 422, 503)},
        dependencies=reader,
        openapi_extra=GET_PARAMETERS.openapi_extra,
    )
    async def get_book(request: Request) -> Response:
        """One book with its authors in credit order; its ETag is its version."""
        params = GET_PARAMETERS.parse(request)
        book = await queries.get_book(params["book_id"])
        unchanged = not_modified(params["if_none_match"], book["version"])
        if unchanged is not None:
            return unchanged
        return JsonResponse(book, headers={"ETag": etag(book["version"])})

    @router.patch(
        f"{prefix}/books/{{book_id}}",
        tags=["books"],
        response_model=BookOut,
        responses=problem_responses(401, 403, 404, 409, 412, 413, 422, 428, 503),
    )
    async def update_book(
        principal: Annotated[Principal, Security(auth.write, scopes=[WRITE])],
        book_id: uuid.UUID,
        body: BookPatch,
        request: Request,
        response: Response,
        if_match: IfMatchParam,
    ) -> BookOut:
        """Change some of a book's fields (If-Match required); author_ids replaces the credit list."""  # noqa: E501
        view = await service().revise_book(
            book_id, ReviseBook(**body.given()), if_match, origin_of(request, principal)
        )
        response.headers["ETag"] = etag(view.book.version)
        return BookOut.of(view)

    @router.delete(
        f"{prefix}/books/{{book_id}}",
        tags=["books"],
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problem_responses(401, 403, 404, 409, 412, 422, 428, 503),
    )
    async def delete_book(
        principal: Annotated[Principal, Security(auth.admin, scopes=[ADMIN])],
        book_id: uuid.UUID,
        request: Request,
        if_match: IfMatchParam,
    ) -> Response:
        """Remove a book and its credits (If-Match required)."""
        await service().delete_book(book_id, if_match, origin_of(request, principal))
        return Response(status_code=status.HTTP_204_NO_CONTENT)
