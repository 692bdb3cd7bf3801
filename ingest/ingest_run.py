"""One ingest into an open collection writer: load, chunk, guard, embed in groups, write, prune."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunking import Chunk, Chunker
from ingest.embedding import Embedder
from ingest.errors import InvalidName, LoaderError, one_line
from ingest.loaders import SUFFIXES, Limits, LoadedDocument, load_file
from ingest.sources import file_sha256, normalize_document_id
from ingest.store.backend import CollectionWriter
from ingest.types import FileFailure, IngestSummary

ChunkGuard = Callable[[list[Chunk]], list[Chunk]]


@dataclass
class _Pending:
    """Documents loaded and chunked, waiting to be embedded together."""

    items: list[tuple[LoadedDocument, str, list[Chunk], bool, str | None]] = field(default_factory=list)
    chunks: int = 0


class IngestRun:
    """Files added one by one to a collection writer; the counts and failures land in `summary`.

    Unchanged files (same SHA-256 as stored) are skipped before parsing; a file that fails is
    recorded in the summary, never raised, and its documents are kept rather than pruned.
    """

    def __init__(
        self,
        writer: CollectionWriter,
        summary: IngestSummary,
        *,
        embedder: Embedder,
        chunker: Chunker,
        limits: Limits,
        chunk_guard: ChunkGuard | None,
        embed_group: int,
    ) -> None:
        self.writer = writer
        self.summary = summary
        self.embedder = embedder
        self.chunker = chunker
        self.limits = limits
        self.chunk_guard = chunk_guard
        self.embed_group = embed_group
        self.known = writer.fingerprints()  # document id -> (sha256, origin, source root)
        self.seen: set[str] = set()
        self.failed_origins: set[str] = set()
        self.reroot: dict[str, str] = {}  # unchanged documents now claimed by another source root
        self.pending = _Pending()

    def add(self, raw_id: str, path: Path, root: str | None) -> None:
        """Load and chunk one file; embed and write what is pending once a group is full."""
        self._load(raw_id, path, root)
        if self.pending.chunks >= self.embed_group:
            self._flush()

    def finish(self, prune_roots: set[str] | None) -> None:
        """Write what is pending, record moved source roots, and delete documents of `prune_roots`
        this run did not see (unless their file failed). The caller commits."""
        if self.pending.items:
            self._flush()
        if self.reroot:
            self.writer.set_roots(self.reroot)
        if prune_roots is not None:
            for doc_id, (_sha, origin, root) in self.known.items():
                if root in prune_roots and doc_id not in self.seen and origin not in self.failed_origins:
                    self.writer.delete_document(doc_id)
                    self.summary.deleted += 1

    def _load(self, raw_id: str, path: Path, root: str | None) -> None:
        """Load and chunk one file into `pending`; failures are recorded, never raised."""
        summary, known, seen = self.summary, self.known, self.seen
        try:
            origin = normalize_document_id(raw_id)
        except InvalidName as exc:
            summary.failures.append(FileFailure(str(raw_id), str(exc)))
            return
        is_jsonl = SUFFIXES.get(path.suffix.lower()) == "jsonl"
        try:
            # Hash before parsing: an unchanged PDF costs a read, not a parse.
            if (
                not is_jsonl
                and origin in known
                and path.stat().st_size <= self.limits.max_file_bytes
                and file_sha256(path) == known[origin][0]
            ):
                seen.add(origin)
                summary.unchanged += 1
                if root is not None and known[origin][2] != root:
                    self.reroot[origin] = root
                return
            docs = load_file(path, origin, self.limits)
        except (LoaderError, OSError) as exc:
            self.failed_origins.add(origin)
            seen.add(origin)
            summary.failures.append(FileFailure(origin, one_line(exc)))
            return
        except Exception as exc:  # a parser bug on one file must not abort the batch
            self.failed_origins.add(origin)
            seen.add(origin)
            summary.failures.append(
                FileFailure(origin, f"cannot parse: {type(exc).__name__}: {one_line(exc)}")
            )
            return
        for doc in docs:
            try:
                doc.document_id = normalize_document_id(doc.document_id)
            except InvalidName as exc:
                summary.failures.append(FileFailure(f"{origin}:{doc.document_id}", str(exc)))
                continue
            if doc.document_id in seen:
                summary.failures.append(
                    FileFailure(doc.document_id, "duplicate document id in this batch; kept the first")
                )
                continue
            seen.add(doc.document_id)
            old = known.get(doc.document_id)
            if old is not None and old[0] == doc.sha256:
                summary.unchanged += 1
                if root is not None and old[2] != root:
                    self.reroot[doc.document_id] = root
                continue
            chunks = self.chunker.split(doc)
            if chunks and self.chunk_guard is not None:
                chunks = self.chunk_guard(chunks)
            if not chunks:
                summary.failures.append(FileFailure(doc.document_id, "no text to index (empty document)"))
                continue
            self.pending.items.append((doc, origin, chunks, old is not None, root))
            self.pending.chunks += len(chunks)

    def _flush(self) -> None:
        """Embed all pending chunks in one call (length-sorted batches) and write them."""
        pending, summary = self.pending, self.summary
        texts = [c.index_text for _d, _o, chunks, _u, _r in pending.items for c in chunks]
        vecs = self.embedder.encode(texts)
        at = 0
        for doc, origin, chunks, updated, root in pending.items:
            n = len(chunks)
            self.writer.put_document(doc, origin, chunks, vecs[at : at + n], root=root)
            at += n
            summary.chunks += n
            if updated:
                summary.updated += 1
            else:
                summary.added += 1
        pending.items.clear()
        pending.chunks = 0
