"""What a client written against the generated package does: typed calls, typed answers.

``library_client`` exists only where ``test_generated_client`` generates it (a temporary folder on
``sys.path``); there mypy checks this module with the package, strictly. ``make lint`` sees the
package as missing (pyproject: ``ignore_missing_imports`` for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from library_client import AuthenticatedClient
from library_client.api.authors import create_author
from library_client.api.books import create_book, get_book, list_books, update_book
from library_client.models import (
    AuthorCreate,
    BookCreate,
    BookOut,
    BookPatch,
    PageOutBookOut,
    Problem,
)


@dataclass
class Outcome:
    """What each call answered, for the test to check."""

    statuses: dict[str, int] = field(default_factory=dict)
    book: BookOut | None = None
    page: PageOutBookOut | None = None
    link: str | None = None
    patched: BookOut | None = None
    stale: Problem | None = None


async def run(base_url: str, token: str) -> Outcome:
    """Create an author and a book, read it, list a page, PATCH it with If-Match, then again
    with the ETag it had (412, a typed problem)."""
    outcome = Outcome()
    async with AuthenticatedClient(base_url=base_url, token=token) as client:
        author = await create_author.asyncio_detailed(
            client=client, body=AuthorCreate(name="Ursula K. Le Guin", birth_year=1929)
        )
        outcome.statuses["create_author"] = author.status_code
        assert author.parsed is not None
        assert not isinstance(author.parsed, Problem)
        author_id: UUID = author.parsed.id

        created = await create_book.asyncio_detailed(
            client=client,
            body=BookCreate(title="The Dispossessed", author_ids=[author_id], isbn="0-06-051275-X"),
        )
        outcome.statuses["create_book"] = created.status_code
        assert isinstance(created.parsed, BookOut)
        book_id = created.parsed.id

        read = await get_book.asyncio_detailed(book_id, client=client)
        outcome.statuses["get_book"] = read.status_code
        assert isinstance(read.parsed, BookOut)
        outcome.book = read.parsed
        etag = read.headers["etag"]

        await create_book.asyncio_detailed(
            client=client,
            body=BookCreate(title="The Left Hand of Darkness", author_ids=[author_id]),
        )
        page = await list_books.asyncio_detailed(client=client, author_id=author_id, limit=1)
        outcome.statuses["list_books"] = page.status_code
        assert isinstance(page.parsed, PageOutBookOut)
        outcome.page = page.parsed
        outcome.link = page.headers.get("link")

        patched = await update_book.asyncio_detailed(
            book_id, client=client, body=BookPatch(publication_year=1974), if_match=etag
        )
        outcome.statuses["update_book"] = patched.status_code
        assert isinstance(patched.parsed, BookOut)
        outcome.patched = patched.parsed

        stale = await update_book.asyncio_detailed(
            book_id, client=client, body=BookPatch(language="en"), if_match=etag
        )
        outcome.statuses["update_book_stale"] = stale.status_code
        assert isinstance(stale.parsed, Problem)
        outcome.stale = stale.parsed
    return outcome
