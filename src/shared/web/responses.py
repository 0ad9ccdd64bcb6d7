"""JSON responses serialised once, by orjson, from read models or plain data (no re-validation)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_UTC_Z  # UTC as "Z", as pydantic writes it: one format on every route


def json_bytes(content: Any) -> bytes:
    """``content`` (dicts, lists, dataclasses, datetimes...) as JSON text."""
    return orjson.dumps(content, option=_OPTIONS)


class JsonResponse(Response):
    """``application/json`` rendered by orjson: dataclasses and datetimes as the API shows them."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)
