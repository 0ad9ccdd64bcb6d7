"""Per principal: Idempotency-Key belongs to the token's sub; every write is audit-logged."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.auth import bearer
from tests.integration.helpers import API, if_match


async def test_the_same_idempotency_key_from_two_clients_is_two_keys(
    anonymous: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "shared-key-1"}
    alice, bob = bearer("catalog:write", sub="alice"), bearer("catalog:write", sub="bob")
    first = await anonymous.post(f"{API}/authors", json={"name": "A"}, headers={**alice, **key})
    assert first.status_code == 201
    # Bob's request with Alice's key neither replays Alice's answer nor is refused as a reuse.
    other = await anonymous.post(f"{API}/authors", json={"name": "B"}, headers={**bob, **key})
    assert other.status_code == 201
    assert "idempotent-replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    # Each still replays for its own owner.
    again = await anonymous.post(f"{API}/authors", json={"name": "A"}, headers={**alice, **key})
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    listed = await anonymous.get(f"{API}/authors")
    assert len(listed.json()["items"]) == 2


def _audit_lines(text: str) -> list[dict[str, object]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{") and '"logger":"library.audit"' in line:
            lines.append(json.loads(line))
    return lines


async def test_every_write_is_logged_with_who_where_what_and_the_outcome(
    anonymous: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = bearer("catalog:write", sub="carol")
    created = await anonymous.post(
        f"{API}/authors",
        json={"name": "Audited"},
        headers={**writer, "X-Request-ID": "req-create-1"},
    )
    url = f"{API}/authors/{created.json()['id']}"
    await anonymous.patch(
        url, json={"bio": "b"}, headers={**writer, **await if_match(anonymous, url)}
    )
    await anonymous.delete(url, headers={**writer, "If-Match": "*"})  # 403: no admin scope
    await anonymous.post(f"{API}/authors", json={"name": "Nobody"})  # 401
    await anonymous.get(url)  # reads are not audited
    lines = _audit_lines(capsys.readouterr().err)
    assert [(x["method"], x["status"], x["outcome"]) for x in lines] == [
        ("POST", 201, "done"),
        ("PATCH", 200, "done"),
        ("DELETE", 403, "refused"),
        ("POST", 401, "refused"),
    ]
    create, patch, delete, anon = lines
    assert create["sub"] == "carol"
    assert create["request_id"] == "req-create-1"
    assert create["client"] == "127.0.0.1"
    assert create["resource"] == url
    assert create["version"] == 1
    assert patch["resource"] == url
    assert patch["version"] == 2
    assert delete["sub"] == "carol"
    assert anon["sub"] is None
