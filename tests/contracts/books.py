"""Behaviour every BookRepository and BookReader adapter must have, run against the fakes and
the real adapters alike."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from library.books.application.ports import BooksUnitOfWork
from library.books.application.queries import (
    BookFilter,
    BookPageQuery,
    BookRead,
    BookReader,
    BookSlice,
    BookSort,
    SortValue,
)
from library.books.domain.errors import DuplicateIsbnError, UnknownAuthorsError
from library.books.domain.model import Book
from shared.kernel.errors import ConcurrentUpdateError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_book(
    title: str,
    author_ids: list[uuid.UUID],
    *,
    isbn: str | None = None,
    year: int | None = None,
    language: str | None = None,
    minute: int = 0,
) -> Book:
    return Book.create(
        title=title,
        author_ids=author_ids,
        isbn=isbn,
        publication_year=year,
        language=language,
        now=T0 + timedelta(minutes=minute),
    )


async def add_all(uow: BooksUnitOfWork, *books: Book) -> None:
    async with uow:
        for book in books:
            await uow.books.add(book)
        await uow.commit()


@dataclass(frozen=True)
class Listing:
    """A listed book with its key in the list's order."""

    book: BookRead
    key: SortValue


async def walk_pages(
    reader: BookReader, sort: BookSort, f: BookFilter | None = None, size: int = 2
) -> list[BookSlice]:
    """Every page of a query, following the last key as the queries do, until one says that
    no more follow; a page followed by more is full, and none is longer than asked."""
    pages: list[BookSlice] = []
    after = None
    while True:
        query = BookPageQuery(filter=f or BookFilter(), sort=sort, limit=size, after=after)
        page = await reader.page(query)
        assert len(page.books) <= size
        pages.append(page)
        if not page.more:
            return pages
        assert len(page.books) == size, "a page followed by more is full"
        after = (page.last_key, uuid.UUID(page.books[-1]["id"]))


async def walk(
    reader: BookReader, sort: BookSort, f: BookFilter | None = None, size: int = 2
) -> list[BookRead]:
    return [book for page in await walk_pages(reader, sort, f, size) for book in page.books]


async def walk_listings(
    reader: BookReader, sort: BookSort, f: BookFilter | None = None
) -> list[Listing]:
    """Every book of a query with its key: a walk in pages of one, each keyed by its book."""
    pages = await walk_pages(reader, sort, f, size=1)
    return [Listing(page.books[0], page.last_key) for page in pages if page.books]


AUTHOR_NAMES = ("Ann Leckie", "Victor Hugo", "J.R.R. Tolkien")


class BookRepositoryContract:
    """Subclasses provide ``uow`` (an empty store), ``reader`` (reading what ``uow`` commits)
    and ``author_ids``: three existing authors, named AUTHOR_NAMES in that order."""

    @pytest.fixture
    def uow(self) -> BooksUnitOfWork:
        raise NotImplementedError

    @pytest.fixture
    def reader(self, uow: BooksUnitOfWork) -> BookReader:
        raise NotImplementedError

    @pytest.fixture
    def author_ids(self) -> list[uuid.UUID]:
        raise NotImplementedError

    async def test_a_book_keeps_its_fields_and_credit_order(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        credits = [author_ids[2], author_ids[0], author_ids[1]]
        book = make_book(
            "The Dispossessed", credits, isbn="0-06-051275-X", year=1974, language="en"
        )
        await add_all(uow, book)
        async with uow:
            found = await uow.books.get(book.id)
        assert found is not None
        assert found.author_ids == tuple(credits)
        assert (
            found.title,
            found.isbn13,
            found.publication_year,
            found.language,
            found.version,
        ) == (
            "The Dispossessed",
            "9780060512750",
            1974,
            "en",
            1,
        )

    async def test_credited_names_follow_the_credits_as_they_are_written(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("Names", [author_ids[2], author_ids[0]])
        async with uow:
            await uow.books.add(book)
            assert await uow.books.credited_names(book.id) == ("J.R.R. Tolkien", "Ann Leckie")
            await uow.commit()
        async with uow:
            loaded = await uow.books.get(book.id)
            assert loaded is not None
            loaded.revise(author_ids=[author_ids[1]], now=T0)
            await uow.books.update(loaded)
            assert await uow.books.credited_names(book.id) == ("Victor Hugo",)

    async def test_a_book_crediting_an_unknown_author_is_refused(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        with pytest.raises(UnknownAuthorsError):
            await add_all(uow, make_book("Ghostly", [author_ids[0], uuid.uuid4()]))
        assert await walk(reader, BookSort.TITLE) == []

    async def test_without_commit_nothing_is_kept(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("Unsaved", author_ids[:1])
        async with uow:
            await uow.books.add(book)
        async with uow:
            assert await uow.books.get(book.id) is None

    async def test_a_second_book_with_the_same_isbn_is_refused(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        await add_all(uow, make_book("First", author_ids[:1], isbn="9780060512750"))
        with pytest.raises(DuplicateIsbnError):
            await add_all(uow, make_book("Second", author_ids[:1], isbn="0-06-051275-X"))
        assert [b["title"] for b in await walk(reader, BookSort.TITLE)] == ["First"]

    async def test_the_holder_of_an_isbn_is_found(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("First", author_ids[:1], isbn="9780060512750")
        await add_all(uow, book, make_book("Second", author_ids[:1]))
        async with uow:
            assert await uow.books.holder_of_isbn("9780060512750") == book.id
            assert await uow.books.holder_of_isbn("9780439023481") is None

    async def test_an_update_replaces_credits_and_bumps_the_version(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("Credits", author_ids)
        await add_all(uow, book)
        async with uow:
            loaded = await uow.books.get(book.id)
            assert loaded is not None
            loaded.revise(author_ids=[author_ids[1], author_ids[0]], title="Credits II", now=T0)
            await uow.books.update(loaded)
            await uow.commit()
        async with uow:
            again = await uow.books.get(book.id)
        assert again is not None
        assert again.author_ids == (author_ids[1], author_ids[0])
        assert (again.title, again.version) == ("Credits II", 2)

    async def test_a_stale_update_is_refused(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("Contested", author_ids[:1])
        await add_all(uow, book)
        async with uow:
            stale = await uow.books.get(book.id)
        async with uow:
            fresh = await uow.books.get(book.id)
            assert fresh is not None
            fresh.revise(title="Fresh", now=T0)
            await uow.books.update(fresh)
            await uow.commit()
        assert stale is not None
        stale.revise(title="Stale", now=T0)
        with pytest.raises(ConcurrentUpdateError):
            async with uow:
                await uow.books.update(stale)
                await uow.commit()

    async def test_a_deleted_book_is_gone_and_its_authors_are_free(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("Short-lived", author_ids[:1])
        await add_all(uow, book)
        async with uow:
            assert await reader.author_has_books(author_ids[0])
            loaded = await uow.books.get(book.id)
            assert loaded is not None
            await uow.books.delete(loaded)
            await uow.commit()
        async with uow:
            assert await uow.books.get(book.id) is None
            assert not await reader.author_has_books(author_ids[0])

    async def test_find_gives_the_book_with_its_authors_names_in_credit_order(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("Good Omens", [author_ids[2], author_ids[0]], year=1990)
        await add_all(uow, book)
        found = await reader.get(book.id)
        assert await reader.get(uuid.uuid4()) is None
        assert found is not None
        assert found["authors"] == [
            {"id": str(author_ids[2]), "name": "J.R.R. Tolkien"},
            {"id": str(author_ids[0]), "name": "Ann Leckie"},
        ]
        assert (found["title"], found["publication_year"], found["version"]) == (
            "Good Omens",
            1990,
            1,
        )
        async with uow:
            loaded = await uow.books.get(book.id)
            assert loaded is not None
            loaded.revise(author_ids=[author_ids[1]], now=T0)
            await uow.books.update(loaded)
            await uow.commit()
        found = await reader.get(book.id)
        assert found is not None
        assert [a["name"] for a in found["authors"]] == ["Victor Hugo"]

    async def test_search_matches_title_and_author_words_ignoring_case_and_accents(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        leckie, hugo, tolkien = author_ids
        await add_all(
            uow,
            make_book("Les Misérables", [hugo]),
            make_book("The Hobbit", [tolkien]),
            make_book("Ancillary Justice", [leckie]),
            make_book("Tolkien: A Biography", [leckie]),
            make_book("Notre-Dame de Paris", [hugo]),
        )

        async def titles(q: str) -> list[str]:
            found = await walk(reader, BookSort.RELEVANCE, BookFilter(q=q), size=10)
            return [b["title"] for b in found]

        assert await titles("les miserables") == ["Les Misérables"]
        assert await titles("LES MISÉRABLES") == ["Les Misérables"]
        assert await titles("miser") == ["Les Misérables"]  # words match by prefix
        assert set(await titles("victor hugo")) == {"Les Misérables", "Notre-Dame de Paris"}
        assert await titles("hugo paris") == ["Notre-Dame de Paris"]  # every word must match
        assert await titles("dame de") == ["Notre-Dame de Paris"]
        # A title word weighs more than an author's name.
        assert await titles("tolkien") == ["Tolkien: A Biography", "The Hobbit"]
        assert await titles("ncillar") == ["Ancillary Justice"]  # 3+ characters: inside titles
        assert await titles("nobody") == []

    async def test_search_takes_special_characters_literally(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        await add_all(
            uow,
            make_book("100% Pure", author_ids[1:2]),
            make_book("snake_case", author_ids[1:2]),
            make_book("snakeXcase", author_ids[1:2]),
            make_book("It's a \\ b", author_ids[1:2]),
        )

        async def titles(q: str) -> set[str]:
            return {
                b["title"] for b in await walk(reader, BookSort.TITLE, BookFilter(q=q), size=10)
            }

        assert await titles("0% P") == {"100% Pure"}
        assert await titles("e_c") == {"snake_case"}
        assert await titles("%") == set()  # no word, and too short to search inside titles
        assert await titles("'s a \\") == {"It's a \\ b"}
        assert await titles("snake") == {"snake_case", "snakeXcase"}
        assert await titles("it's (a) b&!|:*") == {"It's a \\ b"}

    async def test_relevance_pages_are_deterministic_and_complete(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        leckie, hugo, _ = author_ids
        books = [make_book(f"Hugo Book {i}", [leckie]) for i in range(5)]
        books += [make_book(f"Other {i}", [hugo]) for i in range(4)]
        await add_all(uow, *books)
        f = BookFilter(q="hugo")
        seen = await walk_listings(reader, BookSort.RELEVANCE, f)
        assert sorted(s.book["id"] for s in seen) == sorted(str(b.id) for b in books)
        keys = [(s.key, s.book["id"]) for s in seen]
        assert keys == sorted(keys, reverse=True), "best first, then by id descending"
        assert all(s.book["title"].startswith("Hugo") for s in seen[:5])
        for size in (2, 4):
            assert [s.book["id"] for s in seen] == [
                b["id"] for b in await walk(reader, BookSort.RELEVANCE, f, size)
            ]

    async def test_titles_that_only_contain_the_query_come_after_every_word_match(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        leckie, hugo, _ = author_ids
        # "victor hu" is inside these titles, and "hu" starts a word of them, but "victor"
        # starts none: they match only as substrings, however well that one word would rank.
        inside = [make_book(f"Boavictor Hugs {i}", [leckie]) for i in range(3)]
        by_name = make_book("Other", [hugo])  # both words start words of the author's name
        await add_all(uow, *inside, by_name)
        f = BookFilter(q="victor hu")
        ids = [b["id"] for b in await walk(reader, BookSort.RELEVANCE, f, size=2)]
        assert ids == [str(by_name.id), *sorted((str(b.id) for b in inside), reverse=True)]
        assert ids == [s.book["id"] for s in await walk_listings(reader, BookSort.RELEVANCE, f)]

    @pytest.mark.parametrize("sort", [s for s in BookSort if s is not BookSort.RELEVANCE])
    async def test_walking_the_pages_returns_every_book_once_in_order(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID], sort: BookSort
    ) -> None:
        years = [1990, None, -500, 1990, 2001, None, 1850]
        # Capitalised ASCII words (and one repeat): every collation orders these alike.
        titles = ["Delta", "Alpha", "Charlie", "Bravo", "Echo", "Foxtrot", "Alpha"]
        books = [
            make_book(t, author_ids[:1], year=y, minute=i % 3)
            for i, (t, y) in enumerate(zip(titles, years, strict=True))
        ]
        await add_all(uow, *books)
        seen = await walk(reader, sort)
        assert sorted(b["id"] for b in seen) == sorted(str(b.id) for b in books)
        keys = [b[sort.field] for b in seen]  # type: ignore[literal-required]
        if sort.field == "publication_year":
            dated = [k for k in keys if k is not None]
            assert keys == [*dated, None, None], "books without a year come last"
            assert dated == sorted(dated, reverse=sort.descending)
        else:
            assert keys == sorted(keys, reverse=sort.descending)
        if sort.field != "publication_year":
            # Descending is exactly ascending reversed (ties on id reverse too).
            opposite = BookSort(sort.value[1:] if sort.descending else f"-{sort.value}")
            assert [b["id"] for b in seen] == [
                b["id"] for b in reversed(await walk(reader, opposite))
            ]

    async def test_filters_combine(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        a, b, _ = author_ids
        await add_all(
            uow,
            make_book("100% Pure", [a], year=1999, language="en"),
            make_book("1000 Years", [b], year=2005, language="en"),
            make_book("snake_case", [a, b], year=2010, language="fr"),
            make_book("snakeXcase", [b], year=1980),
        )

        async def titles(f: BookFilter) -> set[str]:
            return {book["title"] for book in await walk(reader, BookSort.CREATED_AT, f, size=10)}

        assert await titles(BookFilter(q="0% P")) == {"100% Pure"}
        assert await titles(BookFilter(q="SNAKE")) == {"snakeXcase", "snake_case"}
        assert await titles(BookFilter(q="snake", language="fr")) == {"snake_case"}
        assert await titles(BookFilter(author_id=a)) == {"100% Pure", "snake_case"}
        assert await titles(BookFilter(author_id=b, language="en")) == {"1000 Years"}
        assert await titles(BookFilter(year_from=2000)) == {"1000 Years", "snake_case"}
        assert await titles(BookFilter(year_from=1990, year_to=2006)) == {"1000 Years", "100% Pure"}
        assert await titles(BookFilter(language="de")) == set()

    async def test_the_isbn_filter_finds_one_book_and_combines_with_the_others(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        a, b, _ = author_ids
        await add_all(
            uow,
            make_book("Dune", [a], isbn="0-441-17271-7", year=1965, language="en"),
            make_book("Dune Messiah", [a, b], isbn="9780441172696", year=1969, language="en"),
            make_book("No ISBN", [a]),
        )

        async def titles(f: BookFilter, sort: BookSort = BookSort.CREATED_AT) -> list[str]:
            return [book["title"] for book in await walk(reader, sort, f, size=10)]

        assert await titles(BookFilter(isbn13="9780441172719")) == ["Dune"]
        assert await titles(BookFilter(isbn13="9780441172696", author_id=b)) == ["Dune Messiah"]
        assert await titles(BookFilter(isbn13="9780441172719", author_id=b)) == []
        assert await titles(BookFilter(isbn13="9780441172719", year_from=1966)) == []
        assert await titles(BookFilter(isbn13="9780441172719", q="dune")) == ["Dune"]
        relevance = BookFilter(isbn13="9780441172696", q="dune")
        assert await titles(relevance, BookSort.RELEVANCE) == ["Dune Messiah"]
        assert await titles(BookFilter(isbn13="9780439023481")) == []

    async def test_add_many_stores_books_with_credits_and_skips_taken_keys(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        a, b, c = author_ids
        await add_all(uow, make_book("Stored", [a], isbn="0306406152"))

        def imported(title: str, ref: str, isbn: str | None, authors: list[uuid.UUID]) -> Book:
            return Book.create(
                title=title,
                author_ids=authors,
                isbn=isbn,
                publication_year=-720,
                language="grc",
                external_ref=ref,
                now=T0,
            )

        fresh = imported("Fresh", "src:1", None, [c, a, b])
        taken_isbn = imported("Same ISBN", "src:2", "0306406152", [a])
        twin = imported("Twin of fresh", "src:1", None, [b])
        second = imported("Second", "src:3", "0439554934", [b])
        async with uow:
            added = await uow.books.add_many([fresh, taken_isbn, twin, second])
            await uow.commit()
        assert added == {fresh.id, second.id}
        async with uow:
            stored = await uow.books.get(fresh.id)
            assert await uow.books.get(twin.id) is None
            assert await uow.books.get(taken_isbn.id) is None
        assert stored is not None
        assert stored.author_ids == (c, a, b), "credit order is kept"
        assert (stored.external_ref, stored.publication_year, stored.version) == ("src:1", -720, 1)

    async def test_add_many_without_commit_keeps_nothing(
        self, uow: BooksUnitOfWork, author_ids: list[uuid.UUID]
    ) -> None:
        book = make_book("Gone", author_ids[:1])
        async with uow:
            assert await uow.books.add_many([book]) == {book.id}
        async with uow:
            assert await uow.books.get(book.id) is None

    async def test_known_keys_answers_which_isbns_and_refs_are_taken(
        self, uow: BooksUnitOfWork, reader: BookReader, author_ids: list[uuid.UUID]
    ) -> None:
        book = Book.create(
            title="Known",
            author_ids=author_ids[:1],
            isbn="0306406152",
            publication_year=None,
            language=None,
            external_ref="src:7",
            now=T0,
        )
        async with uow:
            await uow.books.add_many([book])
            await uow.commit()
        keys = await reader.known_keys({"9780306406157", "9780439554930"}, {"src:7", "src:8"})
        empty = await reader.known_keys(set(), set())
        assert keys == ({"9780306406157"}, {"src:7"})
        assert empty == (set(), set())
