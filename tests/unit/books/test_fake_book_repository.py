"""The repository and reader contract, run against the in-memory fakes the unit tests rely on."""

import uuid

import pytest

from tests.contracts.books import AUTHOR_NAMES, BookRepositoryContract
from tests.fakes import FakeBookReader, FakeBooksUnitOfWork


class TestFakeBookRepository(BookRepositoryContract):
    @pytest.fixture
    def uow(self, author_ids: list[uuid.UUID]) -> FakeBooksUnitOfWork:
        names = dict(zip(author_ids, AUTHOR_NAMES, strict=True))
        return FakeBooksUnitOfWork(names=lambda: names)

    @pytest.fixture
    def reader(self, uow: FakeBooksUnitOfWork) -> FakeBookReader:
        return FakeBookReader(uow)

    @pytest.fixture
    def author_ids(self) -> list[uuid.UUID]:
        return [uuid.uuid4() for _ in range(3)]
