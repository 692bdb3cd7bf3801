"""The runbooks an alert's analysis stands on: retrieval, the relevance threshold, the best one's sections."""

from __future__ import annotations

import re

from ingest.types import SearchHit
from service.knowledge import KnowledgeService
from service.rca.evidence import retrieval_query
from service.rca.models import Alert
from service.safety import GuardPipeline
from service.settings import Settings

# Runbook sections an analysis needs besides the alert's "Meaning"; their first passages are taken
# whatever the embedder ranks first within the runbook (issue 21).
_ACTION_HEADING = re.compile(r"diagnos|mitigat|remediat|resolution|troubleshoot|\bfix", re.I)
_EXPAND_POOL = 16  # passages of the best runbook considered for the expansion


def relevance_score(hit: SearchHit, mode: str) -> float:
    """An absolute score: hybrid scores are z-scores within one query's candidates, so a best
    hit of an unrelated query can look strong; its dense cosine similarity does not."""
    if mode in ("bm25", "dense"):
        return hit.score
    scores = hit.metadata.get("scores") or {}
    return float(scores.get("dense", hit.score))


class RunbookFinder:
    def __init__(self, *, knowledge: KnowledgeService, settings: Settings, guard: GuardPipeline) -> None:
        self.knowledge = knowledge
        self.cfg = settings.rca
        self.safety = guard

    async def find(
        self, collection: str, alert: Alert, *, mode: str, top_k: int | None, min_score: float | None
    ) -> tuple[list[SearchHit], list[SearchHit]]:
        """(every hit, the relevant ones plus more of the best runbook), after the context guard."""
        hits = await self.knowledge.search(
            collection, retrieval_query(alert), top_k=top_k or self.cfg.default_top_k, mode=mode, filters=None
        )
        hits = self.safety.filter_context(hits, collection=collection)
        relevant = [h for h in hits if self._relevant(h, alert, mode, min_score)]
        if relevant and self.cfg.expand_chunks:
            relevant += await self._more_of_best_runbook(collection, alert, relevant, mode)
        return hits, relevant

    async def _more_of_best_runbook(
        self, collection: str, alert: Alert, relevant: list[SearchHit], mode: str
    ) -> list[SearchHit]:
        """More passages of the best-matching runbook, favouring its diagnosis and mitigation.

        Runbooks are chunked by section, and the alert text matches the "Meaning" section best,
        while the hypotheses need the "Diagnosis" and "Mitigation" sections of the same document."""
        best = relevant[0].document_id
        seen = {h.chunk_id for h in relevant}
        query = f"{retrieval_query(alert)} diagnosis check mitigation fix"
        more = await self.knowledge.search(
            collection,
            query,
            top_k=max(_EXPAND_POOL, self.cfg.expand_chunks + len(seen)),
            mode=mode,
            filters={"document_id": best},
        )
        more = [h for h in self.safety.filter_context(more, collection=collection) if h.chunk_id not in seen]
        # The first passage of each diagnosis/mitigation section (where its first steps are), then the
        # rest by score: which of a section's passages an embedder ranks first varies by model.
        starts: dict[str, SearchHit] = {}
        for h in sorted(more, key=lambda h: (h.page or 0, int(h.metadata.get("start") or 0))):
            heading = str(h.metadata.get("heading") or "")
            if _ACTION_HEADING.search(heading.rsplit(">", 1)[-1]) and heading not in starts:
                starts[heading] = h
        firsts = list(starts.values())
        more = (firsts + [h for h in more if h not in firsts])[: self.cfg.expand_chunks]
        more.sort(key=lambda h: (h.page or 0, int(h.metadata.get("start") or 0)))  # reading order
        return more

    def _relevant(self, hit: SearchHit, alert: Alert, mode: str, min_score: float | None) -> bool:
        # The passage, its document or its runbook's title names the alert as a whole word
        # (HighErrorRate is not RagserveHighErrorRate).
        named = re.compile(rf"(?<![a-z0-9]){re.escape(alert.alertname.lower())}(?![a-z0-9])")
        titles = f"{hit.metadata.get('title') or ''} {hit.metadata.get('heading') or ''}"
        if any(named.search(t.lower()) for t in (hit.text, hit.document_id, titles)):
            return True
        threshold = min_score
        if threshold is None:
            threshold = self.cfg.min_bm25_score if mode == "bm25" else self.cfg.min_dense_score
        return relevance_score(hit, mode) >= threshold
