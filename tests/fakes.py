"""In-memory test doubles of the repository and unit-of-work ports (tests only).

A fake unit of work works on a private copy of the committed state and publishes it only on
``commit()``, so leaving the block without committing loses the changes, as a real transaction.
The repository contract suites (tests/contracts) run against these fakes and the SQLAlchemy
adapters alike, so the fakes cannot drift from the real thing.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from library.authors.application.queries import (
    TYPO_MIN_LENGTH,
    AuthorPageQuery,
    AuthorRead,
    ScoredAuthor,
)
from library.authors.domain.errors import AuthorHasBooksError
from library.authors.domain.model import Author, valid_name
from library.books.application.ports import ResolvedNames
from library.books.application.queries import (
    SUBSTRING_MIN_LENGTH,
    BookPageQuery,
    BookRead,
    BookSlice,
    BookSort,
)
from library.books.domain.errors import DuplicateIsbnError, UnknownAuthorsError
from library.books.domain.model import Book
from shared.kernel.errors import (
    ConcurrentUpdateError,
    IdempotencyKeyInUseError,
    RuleViolationError,
)
from shared.kernel.events import DomainEvent
from shared.kernel.idempotency import KEY_TTL, StoredResult, stored_time

YEAR_LAST_ASC = 2_147_483_647
YEAR_LAST_DESC = -2_147_483_648
TYPO_THRESHOLD = 0.5  # Settings.search_typo_threshold's default
INSIDE_TITLE_KEY = -2  # the books reader's key for titles that only contain q


def search_key(text: str) -> str:
    """lower(unaccent(text)), as the database's search_key."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", search_key(text))


def _trigrams(text: str) -> list[str]:
    grams: list[str] = []
    for word in words(text):
        padded = f"  {word} "
        grams.extend(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def word_similarity(query: str, target: str) -> float:
    """pg_trgm's word_similarity: the query's trigrams against the best run of the target's."""
    wanted = set(_trigrams(query))
    found = _trigrams(target)
    best = 0.0
    for start in range(len(found)):
        for end in range(start + 1, len(found) + 1):
            run = set(found[start:end])
            best = max(best, len(wanted & run) / len(wanted | run))
    return best


class FakeAuthorRepository:
    """Authors in a dict; names ordered like PostgreSQL's "C" collation (code points)."""

    def __init__(self, rows: dict[uuid.UUID, Author], credited: set[uuid.UUID]) -> None:
        self.rows = rows
        self._credited = credited
        self.locked = False

    async def get(self, author_id: uuid.UUID) -> Author | None:
        row = self.rows.get(author_id)
        return copy.deepcopy(row)

    async def add(self, author: Author) -> None:
        author.version = 1
        self.rows[author.id] = copy.deepcopy(author)

    async def update(self, author: Author) -> None:
        stored = self.rows.get(author.id)
        if stored is None or stored.version != author.version:
            raise ConcurrentUpdateError(f"Author {author.id} was changed by another request.")
        author.version += 1
        self.rows[author.id] = copy.deepcopy(author)

    async def delete(self, author: Author) -> None:
        stored = self.rows.get(author.id)
        if stored is None or stored.version != author.version:
            raise ConcurrentUpdateError(f"Author {author.id} was changed by another request.")
        if author.id in self._credited:
            raise AuthorHasBooksError(author.id)
        del self.rows[author.id]

    async def ids_by_names(self, names: Collection[str]) -> dict[str, uuid.UUID]:
        found: dict[str, uuid.UUID] = {}
        for author in sorted(self.rows.values(), key=lambda a: (a.created_at, str(a.id))):
            if author.name in names:
                found.setdefault(author.name, author.id)
        return found

    async def add_many(self, authors: Sequence[Author]) -> None:
        for author in authors:
            await self.add(author)

    async def lock_for_bulk_registration(self) -> None:
        self.locked = True


def _author_read(author: Author) -> AuthorRead:
    return {
        "id": str(author.id),
        "name": author.name,
        "birth_year": author.birth_year,
        "death_year": author.death_year,
        "bio": author.bio,
        "created_at": stored_time(author.created_at),
        "updated_at": stored_time(author.updated_at),
        "version": author.version,
    }


class FakeAuthorReader:
    """The AuthorReader port over the committed state of a FakeAuthorsUnitOfWork."""

    def __init__(self, uow: FakeAuthorsUnitOfWork) -> None:
        self._uow = uow

    async def get(self, author_id: uuid.UUID) -> AuthorRead | None:
        author = self._uow.store.get(author_id)
        return None if author is None else _author_read(author)

    async def page(self, query: AuthorPageQuery) -> Sequence[ScoredAuthor]:
        q = query.q
        if not q:
            rows = sorted(self._uow.store.values(), key=lambda a: (a.name, str(a.id)))
            if query.after is not None:
                after = (query.after[0], str(query.after[1]))
                rows = [a for a in rows if (a.name, str(a.id)) > after]
            return [ScoredAuthor(_author_read(a)) for a in rows[: query.limit]]
        typos = len(q.strip()) >= TYPO_MIN_LENGTH
        found = [
            (-word_similarity(q, a.name), a.name, str(a.id), a)
            for a in self._uow.store.values()
            if search_key(q) in search_key(a.name)
            or (typos and word_similarity(q, a.name) >= TYPO_THRESHOLD)
        ]
        found.sort(key=lambda f: f[:3])
        if query.after is not None:
            bound = (-(query.after_score or 0.0), query.after[0], str(query.after[1]))
            found = [f for f in found if f[:3] > bound]
        return [ScoredAuthor(_author_read(f[3]), -f[0]) for f in found[: query.limit]]

    async def names(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        store = self._uow.store
        return {a: store[a].name for a in author_ids if a in store}


class FakeBookRepository:
    """Books in a dict, with the unique-ISBN rule of the real table.

    ``names`` gives the authors' names as they are now (the database keeps a copy of them on
    each book; the fake reads them when asked).
    """

    def __init__(
        self, rows: dict[uuid.UUID, Book], names: Callable[[], Mapping[uuid.UUID, str]]
    ) -> None:
        self.rows = rows
        self._names = names

    async def get(self, book_id: uuid.UUID) -> Book | None:
        return copy.deepcopy(self.rows.get(book_id))

    async def add(self, book: Book) -> None:
        self._check_isbn(book)
        self._check_authors(book)
        book.version = 1
        self.rows[book.id] = copy.deepcopy(book)

    async def update(self, book: Book) -> None:
        stored = self.rows.get(book.id)
        if stored is None or stored.version != book.version:
            raise ConcurrentUpdateError(f"Book {book.id} was changed by another request.")
        self._check_isbn(book)
        self._check_authors(book)
        book.version += 1
        self.rows[book.id] = copy.deepcopy(book)

    async def delete(self, book: Book) -> None:
        stored = self.rows.get(book.id)
        if stored is None or stored.version != book.version:
            raise ConcurrentUpdateError(f"Book {book.id} was changed by another request.")
        del self.rows[book.id]

    async def add_many(self, books: Sequence[Book]) -> set[uuid.UUID]:
        added: set[uuid.UUID] = set()
        for book in books:
            taken = any(
                (book.isbn13 is not None and other.isbn13 == book.isbn13)
                or (book.external_ref is not None and other.external_ref == book.external_ref)
                for other in self.rows.values()
            )
            if not taken:
                book.version = 1
                self.rows[book.id] = copy.deepcopy(book)
                added.add(book.id)
        return added

    async def holder_of_isbn(self, isbn13: str) -> uuid.UUID | None:
        return next((b.id for b in self.rows.values() if b.isbn13 == isbn13), None)

    async def credited_names(self, book_id: uuid.UUID) -> tuple[str, ...]:
        names = self._names()
        return tuple(names[a] for a in self.rows[book_id].author_ids)

    def _check_authors(self, book: Book) -> None:
        """The foreign keys: every credited author exists (the database names none of them)."""
        names = self._names()
        if any(a not in names for a in book.author_ids):
            raise UnknownAuthorsError(book.author_ids)

    def _check_isbn(self, book: Book) -> None:
        if book.isbn13 is None:
            return
        for other in self.rows.values():
            if other.id != book.id and other.isbn13 == book.isbn13:
                raise DuplicateIsbnError(book.isbn13)


class FakeBookReader:
    """The BookReader port over the committed state of a FakeBooksUnitOfWork."""

    def __init__(self, uow: FakeBooksUnitOfWork) -> None:
        self._uow = uow

    def _read(self, book: Book) -> BookRead:
        names = self._uow.names()
        return {
            "id": str(book.id),
            "title": book.title,
            "authors": [{"id": str(a), "name": names[a]} for a in book.author_ids],
            "isbn13": book.isbn13,
            "publication_year": book.publication_year,
            "language": book.language,
            "created_at": stored_time(book.created_at),
            "updated_at": stored_time(book.updated_at),
            "version": book.version,
        }

    async def known_keys(
        self, isbns: Collection[str], external_refs: Collection[str]
    ) -> tuple[set[str], set[str]]:
        stored = list(self._uow.store.values())
        return (
            {b.isbn13 for b in stored if b.isbn13 is not None and b.isbn13 in isbns},
            {
                b.external_ref
                for b in stored
                if b.external_ref is not None and b.external_ref in external_refs
            },
        )

    async def get(self, book_id: uuid.UUID) -> BookRead | None:
        book = self._uow.store.get(book_id)
        return None if book is None else self._read(book)

    def _relevance(self, q: str, book: Book) -> float:
        """Like ts_rank: title words weigh 1.0, author-name words 0.4. A title that only
        contains q comes after every word match, as the reader lists it (INSIDE_TITLE_KEY)."""
        if not self._word_match(q, book):
            return float(INSIDE_TITLE_KEY)
        title = words(book.title)
        names = words(" ".join(self._uow.names()[a] for a in book.author_ids))
        score = 0.0
        for word in words(q):
            if any(w.startswith(word) for w in title):
                score += 1.0
            elif any(w.startswith(word) for w in names):
                score += 0.4
        return score

    def _word_match(self, q: str, book: Book) -> bool:
        names = " ".join(self._uow.names()[a] for a in book.author_ids)
        document = words(book.title) + words(names)
        wanted = words(q)
        return bool(wanted) and all(any(w.startswith(word) for w in document) for word in wanted)

    def _matches(self, q: str, book: Book) -> bool:
        if self._word_match(q, book):
            return True
        return len(q.strip()) >= SUBSTRING_MIN_LENGTH and search_key(q) in search_key(book.title)

    async def page(self, query: BookPageQuery) -> BookSlice:
        f = query.filter
        books = list(self._uow.store.values())
        q = f.q
        if q:
            books = [b for b in books if self._matches(q, b)]
        if f.author_id is not None:
            books = [b for b in books if f.author_id in b.author_ids]
        if f.language is not None:
            books = [b for b in books if b.language == f.language]
        if f.isbn13 is not None:
            books = [b for b in books if b.isbn13 == f.isbn13]
        if f.year_from is not None:
            books = [
                b
                for b in books
                if b.publication_year is not None and b.publication_year >= f.year_from
            ]
        if f.year_to is not None:
            books = [
                b
                for b in books
                if b.publication_year is not None and b.publication_year <= f.year_to
            ]
        sort = query.sort

        def value(book: Book) -> Any:
            if sort is BookSort.RELEVANCE:
                return self._relevance(q or "", book)
            return getattr(book, sort.field)

        def key(book: Book) -> tuple[Any, str]:
            return (_sort_value(sort, value(book)), str(book.id))

        books.sort(key=key, reverse=sort.descending)
        if query.after is not None:
            bound = (_sort_value(sort, query.after[0]), str(query.after[1]))
            books = [b for b in books if (key(b) < bound if sort.descending else key(b) > bound)]
        shown = books[: query.limit]
        return BookSlice(
            [self._read(b) for b in shown],
            more=len(books) > query.limit,
            last_key=value(shown[-1]) if shown else None,
        )

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        return any(author_id in b.author_ids for b in self._uow.store.values())


def _sort_value(sort: BookSort, value: Any) -> Any:
    if sort.field == "publication_year" and value is None:
        return YEAR_LAST_DESC if sort.descending else YEAR_LAST_ASC
    if isinstance(value, datetime):
        return value.timestamp()
    return value


class FakeOutbox:
    """The outbox port in memory: ``pending`` until the unit of work commits."""

    def __init__(self) -> None:
        self.pending: list[DomainEvent] = []

    def record(self, *events: DomainEvent) -> None:
        self.pending.extend(events)


class FakeIdempotencyStore:
    """The IdempotencyStore port over a dict: results kept as JSON text (so a result that is
    not plain JSON fails here as in PostgreSQL), expired after KEY_TTL; ``busy`` holds the
    keys another transaction has claimed."""

    def __init__(
        self,
        rows: dict[tuple[str, str], tuple[str, str, datetime]] | None = None,
        busy: set[tuple[str, str]] | None = None,
    ) -> None:
        self.rows = rows if rows is not None else {}
        self.busy = busy if busy is not None else set()

    async def claim(self, scope: str, key: str, now: datetime) -> tuple[str, StoredResult] | None:
        if (scope, key) in self.busy:
            raise IdempotencyKeyInUseError("in use")
        row = self.rows.get((scope, key))
        if row is None or row[2] + KEY_TTL <= now:
            return None
        fingerprint, result, _ = row
        return fingerprint, json.loads(result)

    async def save(
        self, scope: str, key: str, fingerprint: str, result: StoredResult, now: datetime
    ) -> None:
        self.rows[(scope, key)] = (fingerprint, json.dumps(result, allow_nan=False), now)


class _FakeUnitOfWork:
    """Shared behaviour: a private copy on enter, published on commit, counted; the events
    recorded on ``outbox`` are ``events`` once committed, and so are the keys saved on
    ``idempotency`` (``keys``)."""

    def __init__(self) -> None:
        self.commits = 0
        self._active = False
        self.outbox = FakeOutbox()
        self.events: list[DomainEvent] = []
        self.keys = FakeIdempotencyStore()
        self.idempotency = FakeIdempotencyStore()

    @property
    def committed(self) -> bool:
        return self.commits > 0

    async def __aenter__(self) -> Self:
        if self._active:
            raise RuntimeError("a unit of work cannot be entered twice")
        self._active = True
        self.outbox = FakeOutbox()
        self.idempotency = FakeIdempotencyStore(dict(self.keys.rows), self.keys.busy)
        self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active = False

    async def commit(self) -> None:
        self._publish()
        self.events.extend(self.outbox.pending)
        self.outbox.pending = []
        self.keys.rows = dict(self.idempotency.rows)
        self.commits += 1

    def _begin(self) -> None:
        raise NotImplementedError

    def _publish(self) -> None:
        raise NotImplementedError


class FakeAuthorsUnitOfWork(_FakeUnitOfWork):
    """The authors' unit of work over in-memory state."""

    def __init__(self, credited: set[uuid.UUID] | None = None) -> None:
        super().__init__()
        self.store: dict[uuid.UUID, Author] = {}
        self.credited = credited if credited is not None else set()
        self.authors = FakeAuthorRepository({}, self.credited)

    def _begin(self) -> None:
        self.authors = FakeAuthorRepository(copy.deepcopy(self.store), self.credited)

    def _publish(self) -> None:
        self.store = copy.deepcopy(self.authors.rows)


class FakeBooksUnitOfWork(_FakeUnitOfWork):
    """The books' unit of work over in-memory state; ``names`` are the authors' names now."""

    def __init__(self, names: Callable[[], Mapping[uuid.UUID, str]] = dict) -> None:
        super().__init__()
        self.store: dict[uuid.UUID, Book] = {}
        self.names = names
        self.books = FakeBookRepository({}, names)

    def _begin(self) -> None:
        self.books = FakeBookRepository(copy.deepcopy(self.store), self.names)

    def _publish(self) -> None:
        self.store = copy.deepcopy(self.books.rows)


class FakeAuthorDirectory:
    """The books' AuthorDirectory port over a dict of names."""

    def __init__(self, names: dict[uuid.UUID, str] | None = None) -> None:
        self.names = names if names is not None else {}

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {a: self.names[a] for a in author_ids if a in self.names}

    async def resolve_names(self, names: Iterable[str], *, register_missing: bool) -> ResolvedNames:
        """Exact-name matches in ``self.names``; missing names get a new id (kept if registered)."""
        by_name: dict[str, uuid.UUID] = {}
        for author_id, name in self.names.items():
            by_name.setdefault(name, author_id)
        ids: dict[str, uuid.UUID] = {}
        registered: set[str] = set()
        rejected: dict[str, str] = {}
        for name in dict.fromkeys(names):
            try:
                normal = valid_name(name)
            except RuleViolationError as exc:
                rejected[name] = exc.errors[0].msg
                continue
            if normal not in by_name:
                by_name[normal] = uuid.uuid4()
                registered.add(name)
                if register_missing:
                    self.names[by_name[normal]] = normal
            ids[name] = by_name[normal]
        return ResolvedNames(ids=ids, registered=frozenset(registered), rejected=rejected)


class FakeBookCatalog:
    """The authors' BookCatalog port over a set of credited author ids."""

    def __init__(self, credited: set[uuid.UUID] | None = None) -> None:
        self.credited = credited if credited is not None else set()

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        return author_id in self.credited


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now
