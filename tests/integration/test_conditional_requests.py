"""Conditional requests (RFC 9110): ETags from versions, If-Match on writes, If-None-Match."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from tests.integration.helpers import API, assert_problem, create_author, create_book


async def test_get_post_and_patch_carry_the_version_as_etag(client: httpx.AsyncClient) -> None:
    created = await client.post(f"{API}/authors", json={"name": "Tagged"})
    assert created.headers["etag"] == '"1"'
    url = created.headers["location"]
    assert (await client.get(url)).headers["etag"] == '"1"'
    patched = await client.patch(url, json={"bio": "b"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] == '"2"'
    assert patched.json()["version"] == 2


@pytest.mark.parametrize("kind", ["authors", "books"])
async def test_patch_and_delete_without_if_match_are_428_and_change_nothing(
    client: httpx.AsyncClient, kind: str
) -> None:
    author = await create_author(client, "Careful")
    resource = author if kind == "authors" else await create_book(client, "T", [author["id"]])
    url = f"{API}/{kind}/{resource['id']}"
    change = {"name": "Other"} if kind == "authors" else {"title": "Other"}
    assert_problem(await client.patch(url, json=change), 428, "precondition-required")
    assert_problem(await client.delete(url), 428, "precondition-required")
    assert (await client.get(url)).json() == resource


@pytest.mark.parametrize("kind", ["authors", "books"])
async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, kind: str
) -> None:
    author = await create_author(client, "Careful")
    resource = author if kind == "authors" else await create_book(client, "T", [author["id"]])
    url = f"{API}/{kind}/{resource['id']}"
    change = {"name": "Newer"} if kind == "authors" else {"title": "Newer"}
    assert (await client.patch(url, json=change, headers={"If-Match": '"1"'})).status_code == 200
    current = (await client.get(url)).json()
    stale = {"If-Match": '"1"'}
    lost = {"name": "Lost"} if kind == "authors" else {"title": "Lost"}
    assert_problem(await client.patch(url, json=lost, headers=stale), 412, "precondition-failed")
    assert_problem(await client.delete(url, headers=stale), 412, "precondition-failed")
    # A weak tag never matches If-Match (strong comparison), even with the right version.
    weak = {"If-Match": 'W/"2"'}
    assert_problem(await client.patch(url, json=lost, headers=weak), 412)
    assert (await client.get(url)).json() == current
    # A list naming the current version, or "*", matches.
    assert (await client.delete(url, headers={"If-Match": '"7", "2"'})).status_code == 204


async def test_if_match_star_accepts_any_version(client: httpx.AsyncClient) -> None:
    author = await create_author(client, "Star")
    url = f"{API}/authors/{author['id']}"
    response = await client.patch(url, json={"bio": "x"}, headers={"If-Match": "*"})
    assert response.status_code == 200


async def test_if_none_match_with_the_current_etag_is_304(client: httpx.AsyncClient) -> None:
    author = await create_author(client, "Cached")
    book = await create_book(client, "Cached", [author["id"]])
    for url in (f"{API}/authors/{author['id']}", f"{API}/books/{book['id']}"):
        fresh = await client.get(url, headers={"If-None-Match": '"1"'})
        assert fresh.status_code == 304
        assert fresh.content == b""
        assert fresh.headers["etag"] == '"1"'
        assert (await client.get(url, headers={"If-None-Match": 'W/"1"'})).status_code == 304
        assert (await client.get(url, headers={"If-None-Match": '"0", "1"'})).status_code == 304
        stale = await client.get(url, headers={"If-None-Match": '"0"'})
        assert stale.status_code == 200
        assert stale.headers["etag"] == '"1"'


@pytest.mark.race
async def test_fifty_patches_with_the_same_if_match_give_one_200_and_49_412(
    client: httpx.AsyncClient,
) -> None:
    """The version is compared in the UPDATE itself: no read-then-write window, no lost update."""
    rounds = int(os.environ.get("LIBRARY_RACE_ROUNDS", "20"))  # CI: 100
    author = await create_author(client, "Editor")
    book = await create_book(client, "Draft", [author["id"]])
    url = f"{API}/books/{book['id']}"
    for round_ in range(rounds):
        tag = {"If-Match": f'"{round_ + 1}"'}
        responses = await asyncio.gather(
            *(
                client.patch(url, json={"title": f"Edit {round_}.{i}"}, headers=tag)
                for i in range(50)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [412] * 49, (round_, statuses)
        for response in responses:
            if response.status_code == 412:
                assert_problem(response, 412, "precondition-failed")
        winner = next(r for r in responses if r.status_code == 200).json()
        assert winner["version"] == round_ + 2
        current = (await client.get(url)).json()
        assert (current["title"], current["version"]) == (winner["title"], round_ + 2)
