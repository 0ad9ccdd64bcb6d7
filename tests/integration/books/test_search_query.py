"""``search_query(q)``: the words of ``q`` as a prefix tsquery, whatever ``q`` holds (migration
0003; PL/pgSQL since 0012, which must build the very same query)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Les Misérables", "'les':* & 'miserables':*"),
        ("  the THE of  ", "'of':* & 'the':*"),  # sorted, each word once, case folded
        ("O'Brien", "'brien':* & 'o':*"),
        ("back\\slash 100% snake_case", "'100':* & 'back':* & 'case':* & 'slash':* & 'snake':*"),
        ("x:*&|!()<-> 'a", "'a':* & 'x':*"),  # tsquery syntax is only text here
        ("Ærø Straße naïve", "'aero':* & 'naive':* & 'strasse':*"),
        ("日本語", "'日本語':*"),
    ],
)
async def test_the_words_of_q_become_a_prefix_query(
    engine: AsyncEngine, q: str, expected: str
) -> None:
    async with engine.connect() as conn:
        query = await conn.scalar(text("SELECT search_query(:q)::text"), {"q": q})
    assert query == expected


@pytest.mark.parametrize("q", ["", "   ", "!?", "&|"])
async def test_q_without_a_word_is_no_query(engine: AsyncEngine, q: str) -> None:
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT search_query(:q)"), {"q": q}) is None
