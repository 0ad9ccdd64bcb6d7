"""HTTP request and response bodies of the books context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from library.books.application.queries import BookFilter, BookRead, BookSort, ListBooks
from library.books.application.services import BookView
from library.books.domain.model import (
    LANGUAGE_MAX_LENGTH,
    MAX_AUTHORS,
    TITLE_MAX_LENGTH,
    valid_author_ids,
    valid_isbn,
    valid_language,
    valid_title,
)
from shared.kernel.idempotency import stored_time
from shared.kernel.pagination import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from shared.kernel.values import (
    EARLIEST_YEAR,
    LANGUAGE_TAG_PATTERN,
    NON_BLANK_TEXT_PATTERN,
    TEXT_PATTERN,
    search_text,
)
from shared.web.api import (
    DIGITS_ONLY,
    WHOLE_NUMBER,
    RequestModel,
    domain_rule,
    nfc,
    omitted_not_null,
)

QueryYear = Annotated[int, Field(ge=EARLIEST_YEAR, le=9999), DIGITS_ONLY]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), DIGITS_ONLY]

Title = Annotated[
    str,
    BeforeValidator(nfc),
    Field(
        min_length=1,
        max_length=TITLE_MAX_LENGTH,
        json_schema_extra={"pattern": NON_BLANK_TEXT_PATTERN},
    ),
    AfterValidator(domain_rule(valid_title)),
]
AuthorIds = Annotated[
    list[uuid.UUID],
    Field(
        min_length=1,
        max_length=MAX_AUTHORS,
        description="Credit order: the first is the primary author. No duplicates.",
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(domain_rule(valid_author_ids)),
]
Isbn = Annotated[
    str,
    Field(
        max_length=32,
        description="ISBN-10 or ISBN-13; hyphens and spaces allowed. Stored as isbn13.",
        examples=["978-0-439-02348-1"],
    ),
    AfterValidator(domain_rule(valid_isbn)),
]
PublicationYear = Annotated[
    int,
    Field(
        strict=True, ge=EARLIEST_YEAR, le=9999, description="Negative for BCE; not after next year."
    ),
    WHOLE_NUMBER,
]
Language = Annotated[
    str,
    Field(
        max_length=LANGUAGE_MAX_LENGTH,
        description="ISO 639 / BCP 47; returned normalised (eng -> en).",
        examples=["en", "fr", "en-GB"],
        json_schema_extra={"pattern": LANGUAGE_TAG_PATTERN},
    ),
    AfterValidator(domain_rule(valid_language)),
]


class BookCreate(RequestModel):
    """A new book."""

    title: Title
    author_ids: AuthorIds
    isbn: Isbn | None = None
    publication_year: PublicationYear | None = None
    language: Language | None = None


class BookPatch(RequestModel):
    """Fields to change; absent fields stay as they are; ``author_ids`` replaces the whole list."""

    title: Title | SkipJsonSchema[None] = Field(default=None, json_schema_extra=omitted_not_null)
    author_ids: AuthorIds | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=omitted_not_null
    )
    isbn: Isbn | None = None
    publication_year: PublicationYear | None = None
    language: Language | None = None

    @field_validator("title", "author_ids")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("this field cannot be null")
        return value


class AuthorRefOut(BaseModel):
    """An author as credited on a book."""

    id: uuid.UUID
    name: str


class BookOut(BaseModel):
    """A book with its authors in credit order."""

    id: uuid.UUID
    title: str
    authors: list[AuthorRefOut]
    isbn13: str | None
    publication_year: int | None
    language: str | None
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, view: BookView) -> BookOut:
        book = view.book
        return cls(
            id=book.id,
            title=book.title,
            authors=[AuthorRefOut(id=a.id, name=a.name) for a in view.authors],
            isbn13=book.isbn13,
            publication_year=book.publication_year,
            language=book.language,
            created_at=book.created_at,
            updated_at=book.updated_at,
            version=book.version,
        )


def book_document(view: BookView) -> BookRead:
    """A written book as the reads show it (a plain dict for orjson): the JSON of BookOut."""
    book = view.book
    return {
        "id": str(book.id),
        "title": book.title,
        "authors": [{"id": str(a.id), "name": a.name} for a in view.authors],
        "isbn13": book.isbn13,
        "publication_year": book.publication_year,
        "language": book.language,
        "created_at": stored_time(book.created_at),
        "updated_at": stored_time(book.updated_at),
        "version": book.version,
    }


class BookListParams(BaseModel):
    """Which books a list shows, in what order, from where (query parameters)."""

    model_config = ConfigDict(extra="ignore")

    q: Annotated[
        str | None,
        Field(
            max_length=TITLE_MAX_LENGTH,
            description=(
                "Search: every word must start a word of the title or of an author's name; "
                "from 3 characters q also matches anywhere inside the title. Case and accents "
                "are ignored ('les miserables' finds 'Les Misérables'). Sorted by relevance "
                "unless sort says otherwise."
            ),
            json_schema_extra={"pattern": TEXT_PATTERN},
        ),
        AfterValidator(domain_rule(search_text)),
    ] = None
    language: Annotated[
        str | None,
        Field(
            max_length=LANGUAGE_MAX_LENGTH,
            description="Books in this language (any accepted form; matched after normalising).",
            json_schema_extra={"pattern": LANGUAGE_TAG_PATTERN},
        ),
        AfterValidator(domain_rule(valid_language)),
    ] = None
    year_from: QueryYear | None = None
    year_to: QueryYear | None = None
    isbn: Annotated[
        str | None,
        Field(
            max_length=32,
            description=(
                "The book with this ISBN (ISBN-10 or ISBN-13, hyphens and spaces allowed; "
                "matched as its ISBN-13): a page of that book, or an empty page. Combines with "
                "the other filters (all must hold). An invalid ISBN is 422."
            ),
            examples=["0-06-051275-X"],
        ),
        AfterValidator(domain_rule(valid_isbn)),
    ] = None
    sort: BookSort | None = Field(
        default=None,
        description=(
            "Order; '-' means descending; ties break on id. Default: relevance with q "
            "(best match first), created_at without."
        ),
    )
    limit: PageSize = DEFAULT_PAGE_SIZE
    cursor: str | None = Field(
        default=None, max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page."
    )

    def to_request(self, author_id: uuid.UUID | None = None) -> ListBooks:
        """The use case's query."""
        f = BookFilter(
            q=self.q or None,
            author_id=author_id,
            language=self.language,
            year_from=self.year_from,
            year_to=self.year_to,
            isbn13=self.isbn,
        )
        return ListBooks(filter=f, sort=self.sort, limit=self.limit, cursor=self.cursor)


class BookSearchParams(BookListParams):
    """A book list over the whole catalog, optionally one author's books."""

    author_id: uuid.UUID | None = Field(default=None, description="Books crediting this author.")

    def to_request(self, author_id: uuid.UUID | None = None) -> ListBooks:
        return super().to_request(author_id or self.author_id)
