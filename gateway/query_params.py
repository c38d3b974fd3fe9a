"""Unknown query parameters are refused, as unknown body fields are (``extra="forbid"``).

A misspelt or unsupported parameter (``?page_size=1`` where the route takes ``pageSize``) would
otherwise be ignored silently and the caller would read an answer to a question they did not
ask. :func:`refuse_unknown_query` is a dependency of every ``/api`` router: it compares the
request's parameter names with those the matched route (and its dependencies) declare.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant

from runtime.errors import InvalidArgument

__all__ = ["declared_query_names", "refuse_unknown_query"]

_DECLARED: dict[int, frozenset[str]] = {}


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameter names (aliases) ``dependant`` and its sub-dependencies read."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


async def refuse_unknown_query(request: Request) -> None:
    """INVALID_ARGUMENT (400) naming the first query parameter the route does not take."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant: Dependant | None = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _DECLARED.get(id(dependant))
    if known is None:
        known = _DECLARED[id(dependant)] = declared_query_names(dependant)
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise InvalidArgument(name, f"is not a query parameter of this route (it takes: {takes})")
