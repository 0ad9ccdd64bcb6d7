"""The repository contract, run against the in-memory fake the unit tests rely on."""

import uuid

import pytest

from tests.contracts.books import BookRepositoryContract
from tests.fakes import FakeBooksUnitOfWork


class TestFakeBookRepository(BookRepositoryContract):
    @pytest.fixture
    def uow(self) -> FakeBooksUnitOfWork:
        return FakeBooksUnitOfWork()

    @pytest.fixture
    def author_ids(self) -> list[uuid.UUID]:
        return [uuid.uuid4() for _ in range(3)]
