"""The use cases record their domain events on the unit of work, committed with the change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import cast

import pytest

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.application.services import AuthorService, RegisterAuthor, ReviseAuthor
from library.books.application.ports import BooksUnitOfWork
from library.books.application.services import AddBook, BookService, ReviseBook
from library.books.domain.errors import UnknownAuthorsError
from shared.kernel.events import NO_ORIGIN, Origin
from shared.kernel.preconditions import IfMatch
from tests.fakes import FakeAuthorDirectory, FakeAuthorsUnitOfWork, FakeBooksUnitOfWork, FakeClock

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
WHO = Origin(request_id="req-1", actor="alice")


class NoBooks:
    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        return False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def test_author_events_carry_the_version_the_change_and_its_origin(clock: FakeClock) -> None:
    uow = FakeAuthorsUnitOfWork()
    service = AuthorService(cast(AuthorsUnitOfWork, uow), NoBooks(), clock=clock)
    author = await service.register_author(RegisterAuthor(name="Le Guin"), origin=WHO)
    await service.revise_author(author.id, ReviseAuthor(bio="Same"), origin=WHO)
    await service.revise_author(author.id, ReviseAuthor(bio="Same"))  # nothing changes
    await service.delete_author(author.id, IfMatch(versions=frozenset({2})), origin=WHO)
    assert [(e.type, e.resource_id, e.version) for e in uow.events] == [
        ("author.created", author.id, 1),
        ("author.updated", author.id, 2),
        ("author.deleted", author.id, 2),
    ]
    assert all(e.origin == WHO for e in uow.events)
    assert uow.events[0].data["name"] == "Le Guin"
    assert uow.events[1].data == {"bio": "Same", "updated_at": T0}
    assert uow.events[0].occurred_at == T0


async def test_book_events_and_a_refused_write_records_none(clock: FakeClock) -> None:
    author = uuid.uuid4()
    uow = FakeBooksUnitOfWork(names=lambda: {author: "Le Guin"})
    service = BookService(
        cast(BooksUnitOfWork, uow), FakeAuthorDirectory({author: "Le Guin"}), clock=clock
    )
    view = await service.add_book(AddBook(title="Earthsea", author_ids=[author]), origin=WHO)
    with pytest.raises(UnknownAuthorsError):
        await service.add_book(AddBook(title="Nobody's", author_ids=[uuid.uuid4()]))
    await service.revise_book(view.book.id, ReviseBook(language="en"))
    await service.delete_book(view.book.id)
    assert [(e.type, e.version, e.origin) for e in uow.events] == [
        ("book.created", 1, WHO),
        ("book.updated", 2, NO_ORIGIN),
        ("book.deleted", 2, NO_ORIGIN),
    ]
    assert uow.events[0].data["author_ids"] == [author]
    assert uow.events[1].data == {"language": "en", "updated_at": T0}
