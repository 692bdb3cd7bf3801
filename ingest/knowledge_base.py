"""KnowledgeBase: collections with incremental, crash-safe writes and hot-reloading reads.

What an ingest reads is `ingest.sources`; how one run loads, chunks, embeds and writes is
`ingest.ingest_run`; where collections live is the store backend (`ingest.store`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ingest.chunking import Chunk, Chunker, index_text
from ingest.embedding import Embedder, bundled_model
from ingest.errors import CollectionExists, DocumentNotFound, EmbeddingMismatch, IngestError, SourceMissing
from ingest.ingest_run import IngestRun
from ingest.loaders import Limits
from ingest.search import MODES
from ingest.sources import SourceFile, collect_files, normalize_document_id
from ingest.store.backend import QueryEncoder, StaleEncoder, StoreBackend, info_from_record
from ingest.store.collection import utc_now
from ingest.store.faiss_backend import FaissBackend
from ingest.store.names import NAME_RE, validate_name
from ingest.store.vectors import HNSW_THRESHOLD
from ingest.types import CollectionInfo, DocumentInfo, FileFailure, IngestSummary, ReembedSummary, SearchHit

__all__ = ["NAME_RE", "KnowledgeBase", "normalize_document_id", "validate_name"]
log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
EmbedderLoader = Callable[[str], Embedder]


class KnowledgeBase:
    """All collections of one store backend (FAISS under `root` by default); safe to share between threads."""

    def __init__(
        self,
        root: Path | None,
        embedder: Embedder | Callable[[], Embedder],
        *,
        backend: StoreBackend | None = None,
        chunk_tokens: int = 200,
        overlap_tokens: int = 30,
        limits: Limits | None = None,
        hnsw_threshold: int = HNSW_THRESHOLD,
        lock_wait_s: float = 5.0,
        embed_group: int = 256,
        load_embedder: EmbedderLoader | None = None,
    ) -> None:
        if backend is None:
            if root is None:
                raise ValueError("KnowledgeBase needs a root directory or a backend")
            backend = FaissBackend(Path(root), hnsw_threshold=hnsw_threshold, lock_wait_s=lock_wait_s)
        self.backend: StoreBackend = backend
        self.root = Path(root) if root is not None else None  # the FAISS backend's directory
        self._embedder_or_factory = embedder
        self._embedder: Embedder | None = embedder if isinstance(embedder, Embedder) else None
        # Collections built with another bundled model are served with that model, loaded on first use
        # (`load_embedder(model id)`); `reembed` moves a collection to the configured one.
        self._load_embedder: EmbedderLoader = load_embedder or Embedder.load
        self._other_embedders: dict[str, Embedder] = {}
        self._chunkers: dict[str, Chunker] = {}
        self._chunk_tokens = chunk_tokens
        self._overlap_tokens = overlap_tokens
        self.limits = limits or Limits()
        self.embed_group = embed_group
        self._lock = threading.Lock()
        # Called on each document's chunks before indexing; may mark (metadata), rewrite or drop them.
        # The gateway sets the safety ingest guard here (poisoned passages: service/safety).
        self.chunk_guard: Callable[[list[Chunk]], list[Chunk]] | None = None

    # ----- embedder -------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The embedder, loaded on first use when a factory was given."""
        with self._lock:
            if self._embedder is None:
                factory = self._embedder_or_factory
                assert callable(factory)
                self._embedder = factory()
            return self._embedder

    @property
    def chunker(self) -> Chunker:
        """Chunker sized in the configured embedder's tokens."""
        return self._chunker_for(self.embedder)

    def _chunker_for(self, emb: Embedder) -> Chunker:
        """Chunker sized in this embedder's tokens (chunks must fit the model that embeds them)."""
        with self._lock:
            chunker = self._chunkers.get(emb.model_id)
            if chunker is None:
                chunker = Chunker(
                    emb.count_tokens, self._chunk_tokens, self._overlap_tokens, emb.max_seq_length
                )
                self._chunkers[emb.model_id] = chunker
            return chunker

    def embedder_for(self, name: str, record: dict[str, Any]) -> Embedder:
        """The embedder a collection was built with: the configured one, or another bundled model.

        A collection's vectors are only ever searched or extended with the model that made them;
        one built with a model this process cannot load is an EmbeddingMismatch saying what to do.
        """
        emb = self.embedder
        model, dim = record.get("embedding_model"), record.get("dimension")
        if model == emb.model_id and dim == emb.dimension:
            return emb
        with self._lock:
            other = self._other_embedders.get(str(model))
        if other is None and isinstance(model, str) and bundled_model(model) == model:
            try:
                other = self._load_embedder(model)
            except IngestError as exc:
                log.warning("collection %s: cannot load its embedder %s: %s", name, model, exc)
            else:
                log.info(
                    "collection %s was built with %s: served with that model (configured: %s); "
                    "`ragserve reembed --collection %s` moves it to %s",
                    name, model, emb.model_id, name, emb.model_id,
                )  # fmt: skip
                with self._lock:
                    other = self._other_embedders.setdefault(model, other)
        if other is None or other.dimension != dim:
            raise EmbeddingMismatch(
                f"collection {name!r} was built with embedding model {model} (dimension {dim}), which "
                f"this server cannot load; the configured model is {emb.model_id} (dimension "
                f"{emb.dimension}): run `ragserve reembed --collection {name}` to re-embed it with "
                f"{emb.model_id}, or configure embedding model {model}"
            )
        return other

    # ----- reading --------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        """Whether a collection with this name exists."""
        return bool(NAME_RE.match(name)) and self.backend.exists(name)

    def records(self) -> dict[str, dict[str, Any]]:
        """Every collection's stored record (counts, version, updated_at, embedder), by name."""
        return self.backend.records()

    def list_collections(self) -> list[CollectionInfo]:
        """All collections, by name."""
        return [info_from_record(n, r) for n, r in sorted(self.backend.records().items())]

    def info(self, name: str) -> CollectionInfo:
        """One collection's summary."""
        return info_from_record(name, self.backend.record(validate_name(name)))

    def list_documents(self, name: str) -> list[DocumentInfo]:
        """Documents of a collection, by id."""
        return self.backend.list_documents(validate_name(name))

    def chunk_count(self, name: str) -> int:
        """Number of chunks readers see."""
        return self.backend.chunk_count(validate_name(name))

    def search(
        self,
        name: str,
        query: str,
        *,
        top_k: int = 4,
        mode: str = "hybrid",
        filters: dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[SearchHit]:
        """Top chunks for a query; see `ingest.search` for modes, scores and `timings`."""
        validate_name(name)
        if mode not in MODES:
            raise IngestError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        for attempt in (1, 2):
            encoder = None
            if mode != "bm25":
                emb = self.embedder_for(name, self.backend.record(name))
                encoder = QueryEncoder(emb.encode_query, emb.multilingual, emb.model_id)
            try:
                return self.backend.search(
                    name, query, encoder=encoder, top_k=top_k, mode=mode, filters=filters, timings=timings
                )
            except StaleEncoder:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # ----- writing --------------------------------------------------------------------------------
    def _new_base(self) -> dict[str, Any]:
        emb = self.embedder
        return {"embedding_model": emb.model_id, "dimension": emb.dimension, "created_at": utc_now()}

    def create_collection(self, name: str) -> CollectionInfo:
        """Create an empty collection recording the current embedder; CollectionExists if present."""
        validate_name(name)
        _ = self.embedder  # loaded before the writer lock is taken
        with self.backend.writing(name, create=True, base=self._new_base) as writer:
            if writer.record is not None:
                raise CollectionExists(f"collection {name!r} already exists")
            return info_from_record(name, writer.commit())

    def delete_collection(self, name: str) -> None:
        """Delete a collection and all its versions."""
        self.backend.delete_collection(validate_name(name))

    def delete_document(self, name: str, document_id: str) -> None:
        """Remove one document from a collection."""
        validate_name(name)
        with self.backend.writing(name, create=False, base=self._new_base) as writer:
            if not writer.delete_document(document_id):
                raise DocumentNotFound(f"document {document_id!r} is not in collection {name!r}")
            writer.commit()

    def reembed(self, name: str, *, progress: Callable[[int, int], None] | None = None) -> ReembedSummary:
        """Re-embed every chunk of a collection with the configured embedder (a new version for readers).

        Chunks keep their text, ids and BM25 terms (what was indexed is rebuilt from the stored chunk,
        `ingest.chunking.index_text`); only the vectors and the recorded model change. Readers keep
        the previous vectors until the store switches (see the backend); `progress(done, total)`
        counts chunks. A collection already on the configured model is left as it is.
        """
        validate_name(name)
        emb = self.embedder
        t0 = time.perf_counter()
        with self.backend.writing(name, create=False, base=self._new_base) as writer:
            assert writer.record is not None
            before = str(writer.record.get("embedding_model"))
            summary = ReembedSummary(collection=name, previous_model=before, model=emb.model_id)
            if before == emb.model_id and writer.record.get("dimension") == emb.dimension:
                return summary

            def encode(rows: list[dict[str, Any]]) -> Any:
                return emb.encode([index_text(r) for r in rows])

            def counted(done: int, total: int) -> None:
                summary.chunks = done
                if progress is not None:
                    progress(done, total)

            writer.reembed(
                encode, model=emb.model_id, dimension=emb.dimension, group=self.embed_group, progress=counted
            )
            writer.commit()
        summary.seconds = time.perf_counter() - t0
        return summary

    def ingest_paths(
        self,
        name: str,
        paths: Sequence[Path],
        *,
        base_dir: Path | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prune: bool = False,
        create: bool = True,
        progress: Progress | None = None,
    ) -> IngestSummary:
        """Ingest files and directories (recursively); ids are paths relative to the directory or base_dir.

        Each document remembers its source root (the directory, or base_dir, or a file's folder).
        `prune` deletes only documents of this run's source roots that the run did not see, and a
        missing path or a directory with no selected file is then SourceMissing, before anything
        is written: an unmounted volume must not empty the collection.
        """
        files, failures, roots = collect_files(
            paths, base_dir=base_dir, include=include, exclude=exclude, prune=prune
        )
        return self._ingest(
            name, files, failures, prune_roots=roots if prune else None, create=create, progress=progress
        )

    def ingest_files(
        self,
        name: str,
        files: Sequence[tuple[str, Path]],
        *,
        source_root: str | None = None,
        prune: bool = False,
        create: bool = True,
        progress: Progress | None = None,
    ) -> IngestSummary:
        """Ingest (document_id, path) pairs, e.g. uploads named by their original filename.

        `prune` needs a `source_root`: it deletes that root's documents that are not among `files`.
        """
        if prune and source_root is None:
            raise SourceMissing("prune needs a source root: only documents of that root are deleted")
        items = [(doc_id, path, source_root) for doc_id, path in files]
        prune_roots = {source_root} if prune and source_root is not None else None
        return self._ingest(name, items, [], prune_roots=prune_roots, create=create, progress=progress)

    def _ingest(
        self,
        name: str,
        files: list[SourceFile],
        failures: list[FileFailure],
        *,
        prune_roots: set[str] | None,
        create: bool,
        progress: Progress | None,
    ) -> IngestSummary:
        validate_name(name)
        if files:
            _ = self.embedder  # load the model before the clock starts: `seconds` measures the ingest itself
        t0 = time.perf_counter()
        summary = IngestSummary(failures=failures)
        with self.backend.writing(name, create=create, base=self._new_base) as writer:
            emb = self.embedder
            if writer.record is not None:
                emb = self.embedder_for(name, writer.record)
            run = IngestRun(
                writer,
                summary,
                embedder=emb,
                chunker=self._chunker_for(emb),
                limits=self.limits,
                chunk_guard=self.chunk_guard,
                embed_group=self.embed_group,
            )
            for done, (raw_id, path, root) in enumerate(files, 1):
                run.add(raw_id, path, root)
                if progress is not None:
                    progress(raw_id, done, len(files))
            run.finish(prune_roots)
            writer.commit()
        summary.failed = len(summary.failures)
        summary.seconds = time.perf_counter() - t0
        return summary
