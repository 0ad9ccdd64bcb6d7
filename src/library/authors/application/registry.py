"""Authors by name, for bulk imports: find each name's author, registering those missing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.domain.events import author_created
from library.authors.domain.model import Author, valid_name
from shared.kernel.errors import RuleViolationError
from shared.kernel.events import NO_ORIGIN
from shared.kernel.values import utc_now


@dataclass(frozen=True, slots=True)
class NameResolution:
    """What became of each name asked for.

    ``ids`` maps every acceptable name (as asked) to its author; ``registered`` lists the names
    whose author was registered by this call (in a dry run: would have been, with a provisional
    id); ``rejected`` maps each name that breaks the author rules to the reason.
    """

    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    registered: frozenset[str] = frozenset()
    rejected: dict[str, str] = field(default_factory=dict)


class AuthorNameRegistry:
    """Matches names to authors exactly (after the author rules' NFC and trimming)."""

    def __init__(self, uow: AuthorsUnitOfWork, clock: Callable[[], datetime] = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    async def resolve(self, names: Iterable[str], *, register_missing: bool) -> NameResolution:
        """The author of each name; unknown names get a new author when ``register_missing``.

        The lookup and the registrations are one transaction, serialised against other bulk
        registrations, so two imports running at once never register one name twice.
        """
        normal: dict[str, str] = {}
        rejected: dict[str, str] = {}
        for name in dict.fromkeys(names):
            try:
                normal[name] = valid_name(name)
            except RuleViolationError as exc:
                rejected[name] = exc.errors[0].msg if exc.errors else exc.detail
        wanted = list(dict.fromkeys(normal.values()))
        if not wanted:
            return NameResolution(rejected=rejected)
        async with self._uow as uow:
            if register_missing:
                await uow.authors.lock_for_bulk_registration()
            found = await uow.authors.ids_by_names(wanted)
            now = self._clock()
            new = [
                Author.register(name=n, birth_year=None, death_year=None, bio=None, now=now)
                for n in wanted
                if n not in found
            ]
            if new and register_missing:
                await uow.authors.add_many(new)
                # One event per author, as for an author created through the API (no request:
                # an import is a batch job, its events name no request and no actor).
                uow.outbox.record(*(author_created(a, NO_ORIGIN) for a in new))
                await uow.commit()
        found.update({a.name: a.id for a in new})
        new_names = {a.name for a in new}
        return NameResolution(
            ids={name: found[n] for name, n in normal.items()},
            registered=frozenset(name for name, n in normal.items() if n in new_names),
            rejected=rejected,
        )
