"""Behaviour every AuthorRepository and AuthorReader adapter must have, run against the fakes and
the real adapters alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.application.queries import AuthorPageQuery, AuthorRead, AuthorReader
from library.authors.domain.model import Author
from shared.kernel.errors import ConcurrentUpdateError

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def make_author(name: str, **fields: object) -> Author:
    return Author.register(
        name=name,
        birth_year=fields.get("birth_year"),  # type: ignore[arg-type]
        death_year=fields.get("death_year"),  # type: ignore[arg-type]
        bio=fields.get("bio"),  # type: ignore[arg-type]
        now=NOW,
    )


async def add_all(uow: AuthorsUnitOfWork, *authors: Author) -> None:
    async with uow:
        for author in authors:
            await uow.authors.add(author)
        await uow.commit()


class AuthorRepositoryContract:
    """Subclasses provide ``uow``: a unit of work over an empty store, and ``reader``: the
    reader of what ``uow`` commits."""

    @pytest.fixture
    def uow(self) -> AuthorsUnitOfWork:
        raise NotImplementedError

    @pytest.fixture
    def reader(self, uow: AuthorsUnitOfWork) -> AuthorReader:
        raise NotImplementedError

    async def test_an_added_author_is_found_after_commit(self, uow: AuthorsUnitOfWork) -> None:
        author = make_author("Ursula K. Le Guin", birth_year=1929, death_year=2018, bio="Earthsea")
        await add_all(uow, author)
        async with uow:
            found = await uow.authors.get(author.id)
        assert found is not None
        assert (found.name, found.birth_year, found.death_year, found.bio) == (
            "Ursula K. Le Guin",
            1929,
            2018,
            "Earthsea",
        )
        assert found.created_at == NOW
        assert found.version == 1

    async def test_an_unknown_id_is_not_found(self, uow: AuthorsUnitOfWork) -> None:
        async with uow:
            assert await uow.authors.get(uuid.uuid4()) is None

    async def test_without_commit_nothing_is_kept(self, uow: AuthorsUnitOfWork) -> None:
        author = make_author("Never Saved")
        async with uow:
            await uow.authors.add(author)
        async with uow:
            assert await uow.authors.get(author.id) is None

    async def test_an_exception_rolls_back(self, uow: AuthorsUnitOfWork) -> None:
        author = make_author("Raised Away")
        with pytest.raises(RuntimeError):
            async with uow:
                await uow.authors.add(author)
                raise RuntimeError("boom")
        async with uow:
            assert await uow.authors.get(author.id) is None

    async def test_an_update_is_kept_and_bumps_the_version(self, uow: AuthorsUnitOfWork) -> None:
        author = make_author("Old Name")
        await add_all(uow, author)
        async with uow:
            loaded = await uow.authors.get(author.id)
            assert loaded is not None
            loaded.revise(name="New Name", now=NOW)
            await uow.authors.update(loaded)
            await uow.commit()
        assert loaded.version == 2
        async with uow:
            again = await uow.authors.get(author.id)
        assert again is not None
        assert (again.name, again.version) == ("New Name", 2)

    async def test_a_stale_update_is_refused(self, uow: AuthorsUnitOfWork) -> None:
        author = make_author("Contested")
        await add_all(uow, author)
        async with uow:
            first = await uow.authors.get(author.id)
        async with uow:
            second = await uow.authors.get(author.id)
            assert second is not None
            second.revise(name="Second Wins", now=NOW)
            await uow.authors.update(second)
            await uow.commit()
        assert first is not None
        first.revise(name="First Loses", now=NOW)
        with pytest.raises(ConcurrentUpdateError):
            async with uow:
                await uow.authors.update(first)
                await uow.commit()
        async with uow:
            kept = await uow.authors.get(author.id)
        assert kept is not None
        assert kept.name == "Second Wins"

    async def test_a_deleted_author_is_gone(self, uow: AuthorsUnitOfWork) -> None:
        author = make_author("Gone Soon")
        await add_all(uow, author)
        async with uow:
            loaded = await uow.authors.get(author.id)
            assert loaded is not None
            await uow.authors.delete(loaded)
            await uow.commit()
        async with uow:
            assert await uow.authors.get(author.id) is None

    async def test_pages_follow_name_then_id(
        self, uow: AuthorsUnitOfWork, reader: AuthorReader
    ) -> None:
        authors = [make_author(name) for name in ["Carol", "Alice", "Bob", "Alice", "Dave"]]
        await add_all(uow, *authors)
        expected = sorted(authors, key=lambda a: (a.name, str(a.id)))
        seen: list[AuthorRead] = []
        after = None
        while True:
            page = list(await reader.page(AuthorPageQuery(limit=2, after=after)))
            if not page:
                break
            seen.extend(listing.author for listing in page)
            after = (page[-1].author["name"], uuid.UUID(page[-1].author["id"]))
        assert [a["id"] for a in seen] == [str(a.id) for a in expected]

    async def test_q_is_a_case_insensitive_literal_substring(
        self, uow: AuthorsUnitOfWork, reader: AuthorReader
    ) -> None:
        names = ["50% Sale", "5000 Sale", "snake_case", "snakeXcase", "Back\\slash", "MIXED case"]
        await add_all(uow, *[make_author(n) for n in names])

        async def matching(q: str) -> list[str]:
            async with uow:
                return sorted(
                    a.author["name"] for a in await reader.page(AuthorPageQuery(limit=50, q=q))
                )

        assert await matching("%") == ["50% Sale"]
        assert await matching("_") == ["snake_case"]
        assert await matching("\\") == ["Back\\slash"]
        assert await matching("mixed CASE") == ["MIXED case"]
        assert await matching("sale") == ["50% Sale", "5000 Sale"]

    async def test_q_tolerates_typos_and_accents_best_match_first(
        self, uow: AuthorsUnitOfWork, reader: AuthorReader
    ) -> None:
        names = ["J.R.R. Tolkien", "Christopher Tolkien", "Gabriel García Márquez", "Tom Kent"]
        await add_all(uow, *[make_author(n) for n in names])

        async def matching(q: str) -> list[str]:
            async with uow:
                found = await reader.page(AuthorPageQuery(limit=50, q=q))
            scores = [a.score for a in found]
            assert all(s is not None for s in scores)
            assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
            return [a.author["name"] for a in found]

        assert await matching("tolkein") == ["Christopher Tolkien", "J.R.R. Tolkien"]
        assert await matching("garcia marquez") == ["Gabriel García Márquez"]
        assert await matching("MARQUES") == ["Gabriel García Márquez"]
        assert await matching("tolkien") == ["Christopher Tolkien", "J.R.R. Tolkien"]
        # Typos need three characters; below that, q is a substring only.
        assert await matching("tk") == []
        # An exact word ranks above a near one.
        await add_all(uow, make_author("Tolkein Fan Club"))
        assert (await matching("tolkein"))[0] == "Tolkein Fan Club"

    async def test_search_pages_follow_score_then_name_then_id(
        self, uow: AuthorsUnitOfWork, reader: AuthorReader
    ) -> None:
        names = ["Anne Rice", "Anne Rice", "Anna Rice", "Annie Rice", "Rice Anne", "Ann Rica"]
        await add_all(uow, *[make_author(n) for n in names])
        everything = AuthorPageQuery(limit=50, q="anne rice")
        async with uow:
            expected = [a.author["id"] for a in await reader.page(everything)]
        assert len(expected) >= 4
        seen: list[str] = []
        after = None
        score = None
        while True:
            query = AuthorPageQuery(limit=2, q="anne rice", after=after, after_score=score)
            async with uow:
                page = list(await reader.page(query))
            if not page:
                break
            seen.extend(a.author["id"] for a in page)
            last = page[-1]
            after, score = (last.author["name"], uuid.UUID(last.author["id"])), last.score
        assert seen == expected

    async def test_names_covers_known_ids_only(
        self, uow: AuthorsUnitOfWork, reader: AuthorReader
    ) -> None:
        a, b = make_author("Anna"), make_author("Boris")
        await add_all(uow, a, b)
        unknown = uuid.uuid4()
        async with uow:
            names = await reader.names([a.id, b.id, unknown])
        assert names == {a.id: "Anna", b.id: "Boris"}

    async def test_add_many_then_ids_by_names_finds_them_by_exact_name(
        self, uow: AuthorsUnitOfWork
    ) -> None:
        ann, bob = make_author("Ann Ångström"), make_author("Bob")
        async with uow:
            await uow.authors.lock_for_bulk_registration()
            await uow.authors.add_many([ann, bob])
            await uow.commit()
        async with uow:
            found = await uow.authors.ids_by_names(["Ann Ångström", "bob", "Nobody"])
            stored = await uow.authors.get(ann.id)
        assert found == {"Ann Ångström": ann.id}, "names match exactly, case included"
        assert stored is not None
        assert (stored.name, stored.version) == ("Ann Ångström", 1)

    async def test_ids_by_names_picks_the_earliest_registered_namesake(
        self, uow: AuthorsUnitOfWork
    ) -> None:
        late = Author.register(
            name="Jo Smith", birth_year=None, death_year=None, bio=None, now=NOW + timedelta(days=1)
        )
        early = make_author("Jo Smith")
        await add_all(uow, late, early)
        async with uow:
            assert await uow.authors.ids_by_names(["Jo Smith"]) == {"Jo Smith": early.id}
            assert await uow.authors.ids_by_names([]) == {}
