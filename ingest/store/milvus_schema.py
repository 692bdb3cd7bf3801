"""How ragserve collections are laid out in Milvus: names, fields, indexes and filter expressions.

Per ragserve collection NAME, in the configured Milvus database (`store.milvus.db_name`):
- `ragserve_c_<NAME>`: one row per chunk: text, page, offsets, metadata (JSON), the embedding
  (HNSW, inner product on normalized vectors = cosine) and `lexical`, the chunk's BM25 terms, which
  Milvus's BM25 function turns into the sparse field `sparse` (full-text search, SPARSE_INVERTED_INDEX).
- `ragserve_d_<NAME>`: one row per document (sha256, origin, source root, chunk count, the
  generation its visible chunks carry) and one reserved row, id "/" (never a document id), holding
  the collection's record (embedding model and dimension, created_at, version, counts, updated_at).
Names are encoded into Milvus's alphabet (`_` -> `_0`, `-` -> `_1`, `.` -> `_2`).
A vector field's dimension is fixed when a Milvus collection is made, so `ragserve reembed` builds a
new chunks collection, `ragserve_c_<NAME>_r<generation>` (an encoded name never holds `_r`: no other
collection's names start so), and the record's `chunks_collection` then names it; without that field
the chunks live in `ragserve_c_<NAME>`.

BM25 terms: `lexical` holds the chunk's terms as the FAISS backend's BM25 makes them
(`ingest.store.lexical`: jieba words for CJK text, Snowball-stemmed English words, no stopwords),
joined by spaces; the field's analyzer is the `jieba` tokenizer in exact mode, a spelling both
Milvus Lite and the server accept, which splits that text back into the same terms. So Lite and a
server index the same terms, and the same as FAISS: what differs is IDF, which Milvus Lite takes
per segment and a server per segment too (sealed segments are large there), while bm25s takes it
over the whole collection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ingest.errors import IngestError
from ingest.store import lexical
from ingest.store.docstore import COLUMNS, parse_filters
from ingest.store.names import validate_name
from ingest.store.vectors import HNSW_EF_CONSTRUCTION, HNSW_M

CHUNKS_PREFIX = "ragserve_c_"
DOCS_PREFIX = "ragserve_d_"
RECORD_ID = "/"  # the record row's id: normalize_document_id refuses ids starting with "/"
LEASE_ID = "//lease"  # the writer lease row
MAX_ID = 2048  # document ids are at most 1024 characters; chunk keys add "#n@generation"
MAX_TEXT = 65535
# bm25s's defaults (the FAISS backend's BM25), so both score alike.
BM25_K1 = 1.5
BM25_B = 0.75
ANALYZER: dict[str, Any] = {
    "tokenizer": {"type": "jieba", "mode": "exact"},
    # The server lowercases and drops punctuation-only tokens with these; Milvus Lite's jieba
    # tokenizer lowercases by itself and ignores them (our terms carry no punctuation anyway).
    "filter": ["lowercase", "removepunct"],
}
QUERY_WINDOW = 16384  # Milvus's largest offset + limit of one query; past it, a query iterator
CHUNK_FIELDS = ["chunk_id", "document_id", "gen", "source", "page", "start", "end", "text", "metadata"]
DOC_FIELDS = ["document_id", "source", "origin", "sha256", "chunks", "ingested_at", "root", "gen"]
# Every document row but the record and lease rows.
DOCUMENT_ROWS = f"document_id != {json.dumps(RECORD_ID)} and document_id != {json.dumps(LEASE_ID)}"


def encode_name(name: str) -> str:
    """A ragserve collection name in Milvus's alphabet ([A-Za-z0-9_]), reversibly."""
    return validate_name(name).replace("_", "_0").replace("-", "_1").replace(".", "_2")


def decode_name(encoded: str) -> str | None:
    """The ragserve name of an encoded one (None if it is not one)."""
    out: list[str] = []
    it = iter(encoded)
    for ch in it:
        if ch == "_":
            code = next(it, "")
            if code not in ("0", "1", "2"):
                return None
            out.append({"0": "_", "1": "-", "2": "."}[code])
        else:
            out.append(ch)
    return "".join(out)


def collection_names(name: str) -> tuple[str, str]:
    """The Milvus collections (first chunks collection, documents) of a ragserve collection."""
    enc = encode_name(name)
    return CHUNKS_PREFIX + enc, DOCS_PREFIX + enc


def chunks_collection(name: str, record: dict[str, Any]) -> str:
    """The chunks collection readers use now: the record names it after a re-embedding."""
    current = record.get("chunks_collection")
    return str(current) if current else collection_names(name)[0]


def reembedded_name(name: str, generation: str) -> str:
    """A new chunks collection for a re-embedding (see the module docstring)."""
    return f"{collection_names(name)[0]}_r{generation}"


def is_chunks_collection_of(name: str, coll: str) -> bool:
    """Whether a Milvus collection is one of this ragserve collection's chunks collections."""
    first = collection_names(name)[0]
    return coll == first or coll.startswith(first + "_r")


def quote(value: Any) -> str:
    """A value as a Milvus expression literal (strings JSON-quoted: quotes and backslashes escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise IngestError("filter values must be finite numbers")
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def filter_expression(filters: dict[str, Any] | None) -> str | None:
    """A Milvus boolean expression for ragserve's equality filters; "" when nothing can match.

    Column keys (document_id, source, page, chunk_id) compare fields, others metadata JSON keys;
    a list means any-of. null matches nothing, as in the FAISS backend's SQL.
    """
    if not filters:
        return None
    parts: list[str] = []
    for key, values in parse_filters(filters):
        present = [v for v in values if v is not None]
        if not present:
            return ""
        field = key if key in COLUMNS else f"metadata[{json.dumps(key)}]"
        if key in COLUMNS and key != "page":
            present = [str(v) for v in present]
        # Milvus Lite accepts `in` on fields only; an or-chain works on both and on JSON keys.
        parts.append("(" + " or ".join(f"{field} == {quote(v)}" for v in present) + ")")
    return " and ".join(parts) if parts else None


def _server_safe(terms: list[str]) -> list[str]:
    """Terms the server's `lowercase` and `removepunct` filters leave as they are (Milvus Lite ignores
    those filters): our terms are lowercase already; a term of punctuation only ("_") would be kept
    by Lite and dropped by a server, so it is dropped here, for both."""
    return [t for t in terms if any(ch.isalnum() for ch in t)]


def bm25_text(tokens: list[str]) -> str:
    """A chunk's BM25 terms from its surface tokens (as FAISS's BM25 indexes them), joined by spaces."""
    return " ".join(_server_safe(lexical.DEFAULT.apply(tokens)))


def query_terms(query: str) -> list[str]:
    """A query's BM25 terms (question words dropped, as `LexicalIndex.query_tokens` does)."""
    return list(dict.fromkeys(_server_safe(lexical.DEFAULT.apply(lexical.query_words(query)))))


def create_collections(client: Any, call: Callable[..., Any], name: str, dimension: int) -> None:
    """Create a collection's pair (chunks, documents), dropping what a first ingest that died left.

    `client` is a pymilvus MilvusClient; `call(what, fn, *args, **kwargs)` makes one Milvus call.
    """
    from pymilvus import DataType, MilvusClient

    chunks, docs = collection_names(name)
    for coll in (docs, chunks):  # left by a first ingest that died before committing
        if call("has_collection", client.has_collection, coll):
            call("drop_collection", client.drop_collection, coll)
    create_chunks_collection(client, call, chunks, dimension)
    d = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    d.add_field("document_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
    d.add_field("source", DataType.VARCHAR, max_length=MAX_TEXT)
    d.add_field("origin", DataType.VARCHAR, max_length=MAX_ID)
    d.add_field("sha256", DataType.VARCHAR, max_length=64)
    d.add_field("chunks", DataType.INT64)
    d.add_field("ingested_at", DataType.VARCHAR, max_length=32)
    d.add_field("root", DataType.VARCHAR, max_length=MAX_TEXT, nullable=True)
    d.add_field("gen", DataType.VARCHAR, max_length=64)
    d.add_field("metadata", DataType.JSON)
    d.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    dip = client.prepare_index_params()
    dip.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
    call(
        "create_collection",
        client.create_collection,
        docs,
        schema=d,
        index_params=dip,
        consistency_level="Strong",
    )


def create_chunks_collection(client: Any, call: Callable[..., Any], coll: str, dimension: int) -> None:
    """Create one chunks collection (vectors of `dimension`, BM25 over `lexical`)."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
    s.add_field("chunk_id", DataType.VARCHAR, max_length=MAX_ID)
    s.add_field("document_id", DataType.VARCHAR, max_length=MAX_ID)
    s.add_field("gen", DataType.VARCHAR, max_length=64)
    s.add_field("source", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("page", DataType.INT64, nullable=True)
    s.add_field("start", DataType.INT64)
    s.add_field("end", DataType.INT64)
    s.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field(
        "lexical",
        DataType.VARCHAR,
        max_length=MAX_TEXT,
        enable_analyzer=True,
        analyzer_params=ANALYZER,
    )
    s.add_field("metadata", DataType.JSON)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["lexical"],
            output_field_names=["sparse"],
        )
    )
    ip = client.prepare_index_params()
    ip.add_index(
        field_name="vector",
        index_type="HNSW",
        metric_type="IP",
        params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
    )
    ip.add_index(
        field_name="sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
    )
    call(
        "create_collection",
        client.create_collection,
        coll,
        schema=s,
        index_params=ip,
        consistency_level="Strong",
    )
