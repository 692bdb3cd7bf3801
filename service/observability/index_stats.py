"""Per-collection index size, version and age, read from the store's records when /metrics is scraped."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from service.observability.metrics import Metrics

if TYPE_CHECKING:
    from ingest.knowledge_base import KnowledgeBase


@dataclass(frozen=True)
class IndexStat:
    collection: str
    documents: int
    chunks: int
    version: int
    updated_at: float | None  # unix seconds


def read_index_stats(kb: KnowledgeBase) -> list[IndexStat]:
    """One row per collection, from the store's records (cheap enough for every scrape)."""
    out: list[IndexStat] = []
    for name, m in sorted(kb.records().items()):
        updated: float | None = None
        with contextlib.suppress(TypeError, ValueError):
            updated = datetime.fromisoformat(str(m.get("updated_at")).replace("Z", "+00:00")).timestamp()
        out.append(
            IndexStat(
                collection=name,
                documents=int(m.get("documents", 0)),
                chunks=int(m.get("chunks", 0)),
                version=int(m.get("version", 0)),
                updated_at=updated,
            )
        )
    return out


def publish_index_stats(metrics: Metrics, stats: list[IndexStat]) -> None:
    """Set the index gauges; collections that disappeared lose their series."""
    gauges = (
        metrics.index_chunks,
        metrics.index_documents,
        metrics.index_version,
        metrics.index_updated,
        metrics.index_age,
    )
    now = time.time()
    seen = {s.collection for s in stats}
    for g in gauges:
        for (name,) in list(g._metrics):  # prometheus-client keeps its children keyed by label values
            if name not in seen:
                with contextlib.suppress(KeyError):
                    g.remove(name)
    for s in stats:
        metrics.index_chunks.labels(s.collection).set(s.chunks)
        metrics.index_documents.labels(s.collection).set(s.documents)
        metrics.index_version.labels(s.collection).set(s.version)
        if s.updated_at is not None:
            metrics.index_updated.labels(s.collection).set(s.updated_at)
            metrics.index_age.labels(s.collection).set(max(0.0, now - s.updated_at))
