"""`ragserve ingest`, `ragserve collections` and `ragserve delete` subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ingest.errors import IngestError
from ingest.knowledge_base import KnowledgeBase
from ingest.store.factory import backend_from_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the knowledge-base subcommands to the main CLI."""
    p = subparsers.add_parser("ingest", help="ingest files or directories into a collection")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories (recursive)")
    p.add_argument("--collection", "-c", required=True, help="collection name (created if missing)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only matching files")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching files")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete documents whose files are gone (only documents earlier runs ingested from the same "
        "directory; a missing or empty path is then an error that deletes nothing)",
    )
    p.add_argument("--json", action="store_true", help="print one final JSON summary line")
    p.set_defaults(func=cmd_ingest)

    p = subparsers.add_parser(
        "reembed",
        help="re-embed a collection with the configured embedding model",
        description="Re-embed every chunk of a collection with the configured embedding model (e.g. after "
        "the default changed) and publish it as a new version; searches keep the old version meanwhile.",
    )
    p.add_argument("--collection", "-c", required=True, help="collection name")
    p.add_argument("--json", action="store_true", help="print one final JSON summary line")
    p.set_defaults(func=cmd_reembed)

    p = subparsers.add_parser("store", help="store backends: copy collections between them")
    store = p.add_subparsers(dest="store_command", required=True)
    m = store.add_parser(
        "migrate",
        help="copy collections between the FAISS and Milvus stores without re-embedding",
        description="Copy collections (vectors, chunks, metadata) between the FAISS directories under the "
        "data dir and the Milvus store of the settings (RAGSERVE_STORE__MILVUS__URI ...), either way, "
        "incrementally: unchanged documents are skipped, and the copy is verified by document and "
        "chunk counts. Copy from a store that no writer is writing.",
    )
    m.add_argument("--from", dest="source", choices=["faiss", "milvus"], required=True, help="source store")
    m.add_argument("--to", dest="target", choices=["faiss", "milvus"], required=True, help="target store")
    m.add_argument(
        "--collection", "-c", action="append", default=[], help="only this collection (repeatable)"
    )
    m.add_argument("--json", action="store_true", help="print one JSON line per collection")
    m.set_defaults(func=cmd_store_migrate)

    p = subparsers.add_parser("collections", help="list collections")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_collections)

    p = subparsers.add_parser("delete", help="delete a collection, or one document of it")
    p.add_argument("--collection", "-c", required=True, help="collection name")
    p.add_argument("--document", metavar="ID", help="delete only this document")
    p.set_defaults(func=cmd_delete)


def _kb(args: argparse.Namespace) -> KnowledgeBase:
    """A KnowledgeBase whose embedder loads only when a command needs it."""
    from ingest.embedding import Embedder

    settings: Any = getattr(args, "settings", None)
    emb_settings = getattr(settings, "embedding", None)
    device = getattr(emb_settings, "device", None)
    batch = int(getattr(emb_settings, "batch_size", 32))
    threads = getattr(emb_settings, "torch_threads", None)
    root = Path(args.data_dir) / "collections"

    def load_model(model: str) -> Embedder:
        if threads:  # RAGSERVE_EMBEDDING__TORCH_THREADS, as `ragserve serve` applies it (docs/benchmarks.md)
            import torch

            torch.set_num_threads(int(threads))
        return Embedder.load(model, device=device, batch_size=batch, threads=threads)

    store = getattr(settings, "store", None)  # None: FAISS under the data dir (settings-less callers)
    backend = backend_from_settings(settings, root) if store is not None else None
    return KnowledgeBase(
        root, lambda: load_model(args.embedding_model), load_embedder=load_model, backend=backend
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest paths; exit code 1 when any file failed."""
    from tqdm import tqdm

    kb = _kb(args)
    bar = tqdm(total=0, unit="file", file=sys.stderr, disable=None, desc=f"ingest {args.collection}")

    def progress(doc_id: str, done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
        bar.set_postfix_str(doc_id[-40:], refresh=False)

    try:
        summary = kb.ingest_paths(
            args.collection,
            args.paths,
            include=args.include,
            exclude=args.exclude,
            prune=args.prune,
            progress=progress,
        )
    finally:
        bar.close()
    for f in summary.failures:
        print(f"failed: {f.source}: {f.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary.to_dict(with_failures=False)))
    else:
        print(
            f"{args.collection}: {summary.added} added, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.deleted} deleted, {summary.failed} failed; "
            f"{summary.chunks} chunks in {summary.seconds:.1f} s"
        )
    return 1 if summary.failed else 0


def cmd_reembed(args: argparse.Namespace) -> int:
    """Re-embed one collection with the configured model, with a progress bar."""
    from tqdm import tqdm

    kb = _kb(args)
    bar = tqdm(total=0, unit="chunk", file=sys.stderr, disable=None, desc=f"reembed {args.collection}")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        summary = kb.reembed(args.collection, progress=progress)
    except IngestError as exc:
        print(f"ragserve reembed: error: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    if args.json:
        print(json.dumps(summary.to_dict()))
    elif summary.chunks == 0:
        print(f"{args.collection}: already embedded with {summary.model}; nothing to do")
    else:
        print(
            f"{args.collection}: {summary.chunks} chunks re-embedded with {summary.model} "
            f"(was {summary.previous_model}) in {summary.seconds:.1f} s"
        )
    return 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """Copy collections between stores with a progress bar and a verification per collection."""
    from tqdm import tqdm

    from ingest.store.factory import open_backend
    from ingest.store.migrate import migrate_collection

    if args.source == args.target:
        print("ragserve store migrate: error: --from and --to name the same store", file=sys.stderr)
        return 1
    settings: Any = getattr(args, "settings", None)
    root = Path(args.data_dir) / "collections"
    milvus: Any = getattr(getattr(settings, "store", None), "milvus", None)

    def store_of(kind: str) -> Any:
        return open_backend(
            kind,
            collections_dir=root,
            milvus_uri=getattr(milvus, "uri", ""),
            milvus_token=getattr(milvus, "token", ""),
            milvus_db_name=getattr(milvus, "db_name", "default"),
        )

    try:
        source = store_of(args.source)
    except IngestError as exc:
        print(f"ragserve store migrate: error: {exc}", file=sys.stderr)
        return 1
    try:
        target = store_of(args.target)
    except IngestError as exc:
        source.close()
        print(f"ragserve store migrate: error: {exc}", file=sys.stderr)
        return 1
    try:
        names = args.collection or sorted(source.records())
    except IngestError as exc:
        source.close()
        target.close()
        print(f"ragserve store migrate: error: {exc}", file=sys.stderr)
        return 1
    failed = 0
    try:
        for name in names:
            bar = tqdm(total=0, unit="doc", file=sys.stderr, disable=None, desc=f"migrate {name}")

            def progress(_name: str, done: int, total: int, bar: Any = bar) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                s = migrate_collection(source, target, name, progress=progress)
            except IngestError as exc:
                print(f"ragserve store migrate: {name}: error: {exc}", file=sys.stderr)
                failed += 1
                continue
            finally:
                bar.close()
            failed += 0 if s.verified else 1
            if args.json:
                print(json.dumps(s.to_dict()))
            else:
                check = "verified" if s.verified else f"MISMATCH {s.mismatches}"
                print(
                    f"{name}: {s.copied} copied, {s.unchanged} unchanged, {s.deleted} deleted; "
                    f"{s.target_documents}/{s.source_documents} documents, "
                    f"{s.target_chunks}/{s.source_chunks} chunks: {check} ({s.seconds:.1f} s)"
                )
    finally:
        target.close()
        source.close()
    return 1 if failed else 0


def cmd_collections(args: argparse.Namespace) -> int:
    """List collections as a table or JSON."""
    infos = _kb(args).list_collections()
    if args.json:
        keys = ("name", "documents", "chunks", "embedding_model", "dimension")
        print(json.dumps([{k: getattr(i, k) for k in keys} for i in infos]))
        return 0
    if not infos:
        print("no collections")
    for i in infos:
        print(f"{i.name}\t{i.documents} documents\t{i.chunks} chunks\t{i.embedding_model} ({i.dimension})")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a collection or one document."""
    kb = _kb(args)
    try:
        if args.document:
            kb.delete_document(args.collection, args.document)
            print(f"deleted document {args.document!r} from {args.collection}")
        else:
            kb.delete_collection(args.collection)
            print(f"deleted collection {args.collection}")
    except IngestError as exc:
        print(f"ragserve delete: error: {exc}", file=sys.stderr)
        return 1
    return 0
