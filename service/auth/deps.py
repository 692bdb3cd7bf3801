"""`PrincipalDep`: the caller's principal in a router signature (set by the auth middleware)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.auth.principal import Principal


def get_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # fail closed: a route outside the middleware must not run as anyone
        raise RuntimeError("no principal on the request: is AuthMiddleware installed?")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
