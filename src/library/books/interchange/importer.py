"""Importing books in bulk from another catalog, with the same rules as the API."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from library.books.application.ports import AuthorDirectory, BooksUnitOfWork
from library.books.application.queries import BookReader
from library.books.domain.events import book_created
from library.books.domain.model import Book, valid_author_ids
from shared.kernel.errors import RuleViolationError
from shared.kernel.events import NO_ORIGIN
from shared.kernel.values import utc_now

# An exported book (``library export``): ref, title, credited names in credit order, isbn13,
# publication_year, language. No id and no timestamps: an export is the same in any database.
ExportedBook = tuple[str, str, Sequence[str], str | None, int | None, str | None]
# The ref of a book that came from no other catalog (created through the API): ``library:<id>``.
LOCAL_REF_PREFIX = "library:"


@dataclass(frozen=True, slots=True)
class BookDraft:
    """A book as the source catalog describes it; ``external_ref`` is its id there."""

    title: str
    author_names: tuple[str, ...]
    external_ref: str
    isbn: str | None = None
    publication_year: int | None = None
    language: str | None = None


class ImportStatus(StrEnum):
    """What became of one draft: every draft ends as exactly one of these."""

    IMPORTED = "imported"
    PRESENT = "present"  # the catalog has it already (same ISBN or same external reference)
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The fate of one draft; ``reason`` says why it was rejected."""

    status: ImportStatus
    book_id: uuid.UUID | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of each draft of a batch, in order, and the authors' names it registered."""

    outcomes: list[ImportOutcome]
    authors_registered: frozenset[str]


def _reason(exc: RuleViolationError) -> str:
    return "; ".join(e.msg for e in exc.errors) if exc.errors else exc.detail


class BookImporter:
    """Adds batches of books: one set-based write per batch, idempotent across runs.

    A batch is three short steps: which drafts the catalog has already (by ISBN or external
    reference); the authors of the others, found by name or registered (the authors context's
    own transaction); then the new books and their credits in one transaction of our own. A run
    killed between two steps leaves at most authors that a re-run reuses by name.
    """

    def __init__(
        self,
        uow: BooksUnitOfWork,
        authors: AuthorDirectory,
        reader: BookReader,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uow = uow
        self._reader = reader  # the "already there?" lookup: a read, no transaction
        self._authors = authors
        self._clock = clock

    async def import_batch(self, drafts: Sequence[BookDraft], *, dry_run: bool) -> BatchResult:
        """Import ``drafts``; with ``dry_run`` nothing is written, the outcomes are predicted."""
        now = self._clock()
        outcomes: list[ImportOutcome | None] = [None] * len(drafts)
        books: dict[int, Book] = {}
        for i, draft in enumerate(drafts):
            try:
                # Every rule but the authors' identity, with stand-in ids: the real ones come
                # only for books worth registering authors for.
                books[i] = Book.create(
                    title=draft.title,
                    author_ids=[uuid.UUID(int=k + 1) for k in range(len(draft.author_names))],
                    isbn=draft.isbn,
                    publication_year=draft.publication_year,
                    language=draft.language,
                    external_ref=draft.external_ref,
                    now=now,
                )
            except RuleViolationError as exc:
                outcomes[i] = ImportOutcome(ImportStatus.REJECTED, reason=_reason(exc))

        # Books the catalog has already: neither their authors nor their rows are written.
        isbns, refs = await self._reader.known_keys(
            {b.isbn13 for b in books.values() if b.isbn13 is not None},
            {b.external_ref for b in books.values() if b.external_ref is not None},
        )
        seen_isbns: set[str] = set()
        seen_refs: set[str] = set()
        for i, book in list(books.items()):
            if book.isbn13 in isbns or book.external_ref in refs:
                outcomes[i] = ImportOutcome(ImportStatus.PRESENT)
                del books[i]
            elif dry_run and (book.isbn13 in seen_isbns or book.external_ref in seen_refs):
                outcomes[i] = ImportOutcome(ImportStatus.PRESENT)  # an earlier draft has it
                del books[i]
            else:
                if book.isbn13 is not None:
                    seen_isbns.add(book.isbn13)
                if book.external_ref is not None:
                    seen_refs.add(book.external_ref)

        names = await self._authors.resolve_names(
            (n for i in books for n in drafts[i].author_names), register_missing=not dry_run
        )
        for i, book in list(books.items()):
            bad = [n for n in drafts[i].author_names if n in names.rejected]
            if bad:
                outcomes[i] = ImportOutcome(
                    ImportStatus.REJECTED,
                    reason=f"author {bad[0]!r}: {names.rejected[bad[0]]}",
                )
                del books[i]
                continue
            # Two spellings of one name (e.g. NFC and NFD) are one author, credited once.
            ids = list(dict.fromkeys(names.ids[n] for n in drafts[i].author_names))
            books[i] = dataclasses.replace(book, author_ids=valid_author_ids(ids))

        if dry_run:
            added = {b.id for b in books.values()}
        else:
            async with self._uow as uow:
                added = await uow.books.add_many(list(books.values()))
                # One book.created per book imported, as through the API (a batch job: no
                # request, no actor); written with the books, in their transaction.
                uow.outbox.record(
                    *(book_created(b, NO_ORIGIN) for b in books.values() if b.id in added)
                )
                await uow.commit()
        for i, book in books.items():
            outcomes[i] = (
                ImportOutcome(ImportStatus.IMPORTED, book_id=book.id)
                if book.id in added
                else ImportOutcome(ImportStatus.PRESENT)  # taken since we looked, or a duplicate
            )
        done = [o for o in outcomes if o is not None]
        if len(done) != len(drafts):  # pragma: no cover - every branch above sets an outcome
            raise RuntimeError("a draft of the batch was left without an outcome")
        return BatchResult(outcomes=done, authors_registered=names.registered)
