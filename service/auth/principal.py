"""Who is calling: a `Principal` is one API key's name, role, collections and limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from service.errors import APIError

Role = Literal["admin", "user"]
ALL_COLLECTIONS = "*"
# Permissions a key holds beyond its role: "metrics" reads /metrics (it names every collection and
# key), "promql" runs PromQL against the configured Prometheus (tools, RCA evidence).
Permission = Literal["metrics", "promql"]


class PermissionDenied(APIError):
    status_code = 403
    error_type = "permission_error"


@dataclass(frozen=True)
class Principal:
    """One caller. `collections` is None for every collection ("*"), else the names it may see."""

    name: str
    role: Role
    collections: frozenset[str] | None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    permissions: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may(self, permission: str) -> bool:
        """Whether the key holds this permission (see `Permission`)."""
        return permission in self.permissions

    def can_read(self, collection: str) -> bool:
        """Whether this key may see the collection (search it, list its documents, chat over it)."""
        return self.collections is None or collection in self.collections

    def visible(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if self.can_read(n)]

    def require_admin(self, action: str) -> None:
        """403 unless the key is an admin key (user keys only read and generate)."""
        if not self.is_admin:
            raise PermissionDenied(
                f"the API key '{self.name}' has role 'user', which cannot {action}; use an admin key",
                code="insufficient_role",
            )

    def require_manage(self, collection: str, action: str) -> None:
        """403 unless an admin key whose collections include this one (creating a name counts too)."""
        self.require_admin(action)
        if not self.can_read(collection):
            raise PermissionDenied(
                f"the API key '{self.name}' may not {action} in collection '{collection}'",
                param="collection",
                code="collection_not_allowed",
            )


# When no keys file is configured every caller is this one: all collections, admin, default limits.
ANONYMOUS = Principal(
    name="anonymous", role="admin", collections=None, permissions=frozenset({"metrics", "promql"})
)  # without keys everything is open (loopback only unless --insecure)
