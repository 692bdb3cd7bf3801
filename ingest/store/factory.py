"""Choose the store backend from settings (`store.backend`, `store.milvus.*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.errors import IngestError
from ingest.store.backend import StoreBackend
from ingest.store.faiss_backend import FaissBackend

BACKENDS = ("faiss", "milvus")


def open_backend(
    kind: str,
    *,
    collections_dir: Path,
    milvus_uri: str = "",
    milvus_token: str = "",
    milvus_db_name: str = "default",
    milvus_timeout_s: float = 30.0,
) -> StoreBackend:
    """A backend: FAISS directories under collections_dir, or Milvus at milvus_uri (default: Milvus
    Lite in `milvus.db` beside collections_dir)."""
    if kind == "faiss":
        return FaissBackend(collections_dir)
    if kind == "milvus":
        from ingest.store.milvus_backend import MilvusBackend

        uri = milvus_uri or str(Path(collections_dir).parent / "milvus.db")
        return MilvusBackend(uri, token=milvus_token, db_name=milvus_db_name, timeout_s=milvus_timeout_s)
    raise IngestError(f"unknown store backend {kind!r}; use one of {', '.join(BACKENDS)}")


def backend_from_settings(settings: Any, collections_dir: Path | None = None) -> StoreBackend:
    """The backend a `service.settings.Settings` names (duck-typed: ingest does not import service)."""
    store = settings.store
    return open_backend(
        store.backend,
        collections_dir=collections_dir or settings.collections_dir,
        milvus_uri=store.milvus.uri,
        milvus_token=store.milvus.token,
        milvus_db_name=store.milvus.db_name,
        milvus_timeout_s=store.milvus.timeout_s,
    )
