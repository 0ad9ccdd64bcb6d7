"""The repository contract, run against the in-memory fake the unit tests rely on."""

import pytest

from tests.contracts.authors import AuthorRepositoryContract
from tests.fakes import FakeAuthorReader, FakeAuthorsUnitOfWork


class TestFakeAuthorRepository(AuthorRepositoryContract):
    @pytest.fixture
    def uow(self) -> FakeAuthorsUnitOfWork:
        return FakeAuthorsUnitOfWork()

    @pytest.fixture
    def reader(self, uow: FakeAuthorsUnitOfWork) -> FakeAuthorReader:
        return FakeAuthorReader(uow)
