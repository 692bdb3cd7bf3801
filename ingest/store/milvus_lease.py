"""The writer lease of a Milvus collection (a server only; Milvus Lite allows one process per file).

Milvus has no compare-and-swap, so the lease is taken by read, write, wait `LEASE_SETTLE_S`, read
again: of two writers that both found it free, the one whose write came first reads the other's and
stops before writing anything. Each renewal and the commit check the lease first; a writer that
finds another holder stops (StoreBusy). Used by `milvus_writer.MilvusWriter` (see its docstring).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

from ingest.errors import StoreBusy
from ingest.store.milvus_schema import LEASE_ID

if TYPE_CHECKING:
    from ingest.store.milvus_backend import MilvusBackend

# A server's writer lease not renewed for this long is taken over (its writer died without aborting);
# a live writer renews it every LEASE_RENEW_S while it writes.
LEASE_S = 120.0
LEASE_RENEW_S = 20.0
# Between writing the lease and reading it back: longer than another writer's read-to-write gap.
LEASE_SETTLE_S = 1.0


class WriterLease:
    """Lease state and steps of a writer; the writer provides `b`, `name`, `gen`, `docs_coll`, `_put_row`."""

    b: MilvusBackend
    name: str
    gen: str
    docs_coll: str
    _lease: bool = False
    _renewed: float = -math.inf
    _lost: bool = False  # another writer took the lease over

    def _put_row(self, doc_id: str, metadata: dict[str, Any], gen: str = "") -> None:
        raise NotImplementedError

    def _read_lease(self) -> dict[str, Any]:
        rows = self.b.call(
            "get", self.b.client.get, self.docs_coll, ids=[LEASE_ID], output_fields=["metadata"]
        )
        return dict((rows[0]["metadata"] or {}) if rows else {})

    def _take_lease(self) -> None:
        """Read, write, settle, read again (see the module docstring: no compare-and-swap)."""
        lease = self._read_lease()
        age = time.time() - float(lease.get("renewed", 0))
        if lease.get("holder") and age < LEASE_S:
            raise StoreBusy(
                f"collection {self.name!r} is being written by another process; retry when it "
                f"finishes (a writer that died frees it after {LEASE_S - age:.0f} s)"
            )
        self._put_row(LEASE_ID, {"holder": self.gen, "renewed": time.time()})
        time.sleep(LEASE_SETTLE_S)
        if self._read_lease().get("holder") != self.gen:
            raise StoreBusy(
                f"collection {self.name!r}: another process started writing it at the same moment; "
                "retry when it finishes"
            )
        self._renewed = time.monotonic()
        self._lease = True

    def _check_lease(self) -> None:
        """Still the holder? (a server only) Otherwise stop: another writer owns the collection now."""
        if self.b.lite or not self._lease:
            return
        holder = self._read_lease().get("holder")
        if holder != self.gen:
            self._lost = True
            raise StoreBusy(
                f"collection {self.name!r}: this writer lost its lease to another one ({holder}); "
                "its write stops, and what it did not finish is left out"
            )

    def _renew(self, *, every: float = 0.0) -> None:
        """Renew the writer lease (a server only), at most once per `every` seconds."""
        if self.b.lite or time.monotonic() - self._renewed < every:
            return
        self._check_lease()
        self._put_row(LEASE_ID, {"holder": self.gen, "renewed": time.time()})
        self._renewed = time.monotonic()
        self._lease = True

    def release(self) -> None:
        """Drop the writer lease (never raises; a lost lease is the new holder's)."""
        if self._lease and not self._lost:
            with contextlib.suppress(Exception):
                self.b.call("delete", self.b.client.delete, self.docs_coll, ids=[LEASE_ID])
            self._lease = False
