"""Relevance order as the asyncpg reader serves it at scale (docs/search.md).

A search whose words match at most RANKED_MATCHES_MAX books is ranked by ts_rank; a broader
one lists its word matches by id (descending), unranked. Titles that only contain the query
come last either way. The threshold is lowered here so that a handful of books is "broad".
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from library.books.application.ports import BooksUnitOfWork
from library.books.application.queries import BookFilter, BookPageQuery, BookSlice, BookSort
from library.books.infrastructure import reader as reader_module
from library.books.infrastructure.reader import (
    INSIDE_TITLE_KEY,
    UNRANKED_WORD_KEY,
    AsyncpgBookReader,
)
from library.books.infrastructure.unit_of_work import SqlAlchemyBooksUnitOfWork
from shared.persistence.reads import ReadPool
from tests.contracts.authors import make_author
from tests.contracts.books import Listing, add_all, make_book, walk, walk_listings

HUGO = BookFilter(q="hugo")


@pytest.fixture
def uow(session_factory: async_sessionmaker[AsyncSession]) -> SqlAlchemyBooksUnitOfWork:
    return SqlAlchemyBooksUnitOfWork(session_factory)


@pytest.fixture
def reader(read_pool: ReadPool) -> AsyncpgBookReader:
    return AsyncpgBookReader(read_pool)


@pytest.fixture
async def authors(session_factory: async_sessionmaker[AsyncSession]) -> list[uuid.UUID]:
    made = [make_author("Ann Leckie"), make_author("Victor Hugo")]
    async with SqlAlchemyAuthorsUnitOfWork(session_factory) as authors_uow:
        for author in made:
            await authors_uow.authors.add(author)
        await authors_uow.commit()
    return [a.id for a in made]


async def _catalog(uow: BooksUnitOfWork, authors: list[uuid.UUID]) -> dict[str, set[str]]:
    """Word matches of "hugo" (in the title, or the author's name) and substring-only ones."""
    leckie, hugo = authors
    words = [make_book(f"Hugo Book {i}", [leckie]) for i in range(3)]
    words += [make_book(f"Other {i}", [hugo]) for i in range(3)]
    inside = [make_book(f"Thugos {i}", [leckie]) for i in range(3)]
    unrelated = [make_book("Ancillary Justice", [leckie])]
    await add_all(uow, *words, *inside, *unrelated)
    return {"words": {str(b.id) for b in words}, "inside": {str(b.id) for b in inside}}


def _ids(listings: list[Listing]) -> list[str]:
    return [s.book["id"] for s in listings]


def _key(listing: Listing) -> float:
    assert isinstance(listing.key, float), listing.key
    return listing.key


async def _page(reader: AsyncpgBookReader, after: Listing | None, size: int = 1) -> BookSlice:
    key = None if after is None else (after.key, uuid.UUID(after.book["id"]))
    return await reader.page(BookPageQuery(HUGO, BookSort.RELEVANCE, size, after=key))


async def _next(reader: AsyncpgBookReader, after: Listing | None) -> list[Listing]:
    """The next book of the walk with its key (a page of one), or none."""
    page = await _page(reader, after)
    return [Listing(book, page.last_key) for book in page.books]


async def test_ranked_word_matches_come_before_titles_that_only_contain_the_query(
    uow: BooksUnitOfWork, reader: AsyncpgBookReader, authors: list[uuid.UUID]
) -> None:
    expected = await _catalog(uow, authors)
    seen = await walk_listings(reader, BookSort.RELEVANCE, HUGO)
    ids = _ids(seen)
    assert set(ids[:6]) == expected["words"]
    assert set(ids[6:]) == expected["inside"]
    assert all(_key(s) > UNRANKED_WORD_KEY for s in seen[:6])
    assert min(_key(s) for s in seen[:3]) > max(_key(s) for s in seen[3:6]), "title words first"
    assert ids[6:] == sorted(ids[6:], reverse=True)
    assert {s.key for s in seen[6:]} == {INSIDE_TITLE_KEY}


async def test_a_search_too_broad_to_rank_lists_its_word_matches_by_id(
    uow: BooksUnitOfWork,
    reader: AsyncpgBookReader,
    authors: list[uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader_module, "RANKED_MATCHES_MAX", 5)  # "hugo" has 6 word matches
    expected = await _catalog(uow, authors)
    seen = await walk_listings(reader, BookSort.RELEVANCE, HUGO)
    ids = _ids(seen)
    assert ids[:6] == sorted(expected["words"], reverse=True)
    assert ids[6:] == sorted(expected["inside"], reverse=True)
    assert [s.key for s in seen] == [UNRANKED_WORD_KEY] * 6 + [INSIDE_TITLE_KEY] * 3
    for size in (2, 4):
        assert ids == [b["id"] for b in await walk(reader, BookSort.RELEVANCE, HUGO, size)]


@pytest.mark.parametrize("change", ["grows past the threshold", "shrinks below it"])
async def test_a_walk_keeps_the_order_it_started_in_when_the_catalog_changes(
    uow: BooksUnitOfWork,
    reader: AsyncpgBookReader,
    authors: list[uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    threshold = 6 if change == "grows past the threshold" else 5
    monkeypatch.setattr(reader_module, "RANKED_MATCHES_MAX", threshold)
    expected = await _catalog(uow, authors)
    first = await _next(reader, None)
    ranked = change == "grows past the threshold"
    assert all((_key(s) > UNRANKED_WORD_KEY) is ranked for s in first)
    if ranked:  # two more word matches: 8 > 6, a first page now would be unranked
        await add_all(uow, *(make_book(f"Hugo Extra {i}", authors[:1]) for i in range(2)))
    else:  # two word matches fewer: 4 <= 5, a first page now would be ranked
        gone = sorted(expected["words"] - set(_ids(first)))[:2]
        async with uow:
            for book_id in gone:
                book = await uow.books.get(uuid.UUID(book_id))
                assert book is not None
                await uow.books.delete(book)
            await uow.commit()
        expected["words"] -= set(gone)
    seen = list(first)
    while page := await _next(reader, seen[-1]):
        seen.extend(page)
    ids = _ids(seen)
    assert len(ids) == len(set(ids)), "no book twice"
    assert expected["words"] | expected["inside"] <= set(ids), "no book missed"
    keys = [(_key(s), s.book["id"]) for s in seen]
    assert keys == sorted(keys, reverse=True)


def _substring_scans(plan: dict[str, Any]) -> Iterator[int]:
    """How many times each node testing titles for the substring (LIKE: ``~~``) ran."""
    conditions = ("Index Cond", "Recheck Cond", "Filter")
    if any("~~" in plan.get(condition, "") for condition in conditions):
        yield plan["Actual Loops"]
    for child in plan.get("Plans", []):
        yield from _substring_scans(child)


@pytest.mark.parametrize(("size", "searches_inside"), [(4, False), (10, True)])
async def test_a_page_full_of_word_matches_never_searches_inside_titles(
    uow: BooksUnitOfWork,
    reader: AsyncpgBookReader,
    read_pool: ReadPool,
    authors: list[uuid.UUID],
    size: int,
    searches_inside: bool,
) -> None:
    """The substring search (the trigram index: the costly part of a rare word's search) runs
    only when the word matches do not fill the page: six word matches fill a page of 4, not
    one of 10."""
    await _catalog(uow, authors)
    sent: list[tuple[str, tuple[Any, ...]]] = []

    def on_read(record: Any) -> None:
        sent.append((record.query, record.args))

    await read_pool.add_query_logger(on_read)
    try:
        assert len((await _page(reader, None, size)).books) == min(size, 9)
        await asyncio.sleep(0.05)  # asyncpg calls its query loggers with loop.call_soon
    finally:
        await read_pool.remove_query_logger(on_read)
    statement, args = sent[-1]
    row = await read_pool.fetchrow(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *args)
    assert row is not None
    document = row[0]
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    loops = list(_substring_scans(plan))
    assert loops, "the statement can search inside titles"
    assert any(loops) is searches_inside, loops
