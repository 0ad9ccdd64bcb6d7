"""The route template of a request (``/api/v1/books/{book_id}``), for metrics and spans."""

from __future__ import annotations

from fastapi.routing import iter_route_contexts
from starlette.types import Scope


class RouteTemplates:
    """Each matched route's full path template (routers' prefixes included), found once.

    ``known`` maps a route object's id to its template (route objects are not hashable; they
    live as long as the app): the request path reads it directly, :meth:`resolve` fills it.
    """

    def __init__(self) -> None:
        self.known: dict[int, str] = {}

    def of(self, scope: Scope) -> str:
        """The template of the route the request matched, or "" (no route matched)."""
        route = scope.get("route")
        if route is None:
            return ""
        template = self.known.get(id(route))
        return self.resolve(scope, route) if template is None else template

    def resolve(self, scope: Scope, route: object) -> str:
        app = scope.get("app")
        for context in iter_route_contexts(getattr(app, "routes", [])):
            if context.original_route is route and context.path:
                self.known[id(route)] = context.path
                return context.path
        template = str(getattr(route, "path", ""))
        self.known[id(route)] = template
        return template
