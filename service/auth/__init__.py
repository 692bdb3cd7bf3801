"""Access control, tenancy, rate limits and backpressure (issue 8; docs/security.md).

What the rest of the gateway can rely on
-----------------------------------------
- Every request except `/healthz`, `/readyz` and `/metrics` passes `AuthMiddleware`, which sets
  `request.state.principal` (a `Principal`; routers take it as `PrincipalDep` from
  `service.auth.deps`) and binds it for the request's task and the tasks it spawns (streams too).
  Without a keys file the principal is `ANONYMOUS` (admin, every collection).
- Collections: `principal.can_read(name)` says whether a key may see a collection;
  `principal.visible(names)` filters a list; `principal.require_manage(name, action)` raises 403
  for user keys or for collections outside an admin key's list. Code without the principal at hand
  calls `service.auth.can_read(name)` / `current_principal()` (the bound request's principal, or
  None outside requests: ingestion jobs, start-up).
- Isolation is enforced in `KnowledgeService` (`require`, `search`, `list_documents`,
  `list_collections`), the one door to the index, before any similarity search: a collection the
  key may not see answers exactly like a missing one (404 `collection_not_found`). Server-side
  tools that go through `KnowledgeService` (search_knowledge_base, get_document) are therefore
  covered; tools should still offer the model only `principal.visible(...)` names.
- Token accounting: call `report_usage(usage)` with each engine answer's OpenAI `usage` object
  (the model interface does it, `service/llm`); the sum replaces the admission estimate in the
  key's tokens-per-minute bucket. A tool loop that calls the engine several times should report each
  call once (through `ChatModel.observe_usage`, which `complete` and `stream` call), not a total on top.
- Generation routes run through `AccessControl.run_generation(call, raw)`: tokens/min (429), a slot
  in the bounded admission queue (503 + Retry-After), the per-request deadline (504); a stream keeps
  its slot until it ends, and its upstream engine request is closed when the client goes away.
- Admin actions log one line on `ragserve.audit` through `audit(principal, action, ...)`.
"""

from service.auth.audit import audit
from service.auth.context import can_read, current_principal, report_usage
from service.auth.gate import AccessControl
from service.auth.principal import ANONYMOUS, PermissionDenied, Principal

__all__ = [
    "ANONYMOUS",
    "AccessControl",
    "PermissionDenied",
    "Principal",
    "audit",
    "can_read",
    "current_principal",
    "report_usage",
]
