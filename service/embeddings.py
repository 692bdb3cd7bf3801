"""`/v1/embeddings` served by the gateway's own sentence-transformers embedder."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from ingest.embedding import Embedder
from service.errors import BadRequest, NotFound
from service.protocol.openai import EmbeddingRequest

MAX_INPUTS = 2048


class EmbeddingService:
    def __init__(self, embedder: Embedder, aliases: set[str]) -> None:
        self.embedder = embedder
        # Clients may name the model by its short id or its full hub id.
        self.aliases = aliases | {embedder.model_id}

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def _texts(self, req: EmbeddingRequest) -> list[str]:
        inp = req.input
        if isinstance(inp, str):
            items: list[Any] = [inp]
        elif inp and all(isinstance(x, int) for x in inp):
            items = [inp]  # one token array
        else:
            items = list(inp)
        if not items:
            raise BadRequest("input must not be empty", param="input")
        if len(items) > MAX_INPUTS:
            raise BadRequest(f"at most {MAX_INPUTS} inputs per request", param="input")
        texts = []
        for item in items:
            if isinstance(item, str):
                if not item:
                    raise BadRequest("input strings must not be empty", param="input")
                texts.append(item)
            else:
                texts.append(self.embedder.decode(list(item)))
        return texts

    async def embed(self, req: EmbeddingRequest) -> dict[str, Any]:
        if req.model not in self.aliases:
            raise NotFound(
                f"embedding model '{req.model}' does not exist; this server embeds with '{self.model_id}'",
                param="model", code="model_not_found",
            )  # fmt: skip
        if req.dimensions is not None and req.dimensions != self.embedder.dimension:
            raise BadRequest(
                f"dimensions={req.dimensions} is not supported; "
                f"'{self.model_id}' has {self.embedder.dimension}",
                param="dimensions",
            )
        texts = self._texts(req)
        vectors = await run_in_threadpool(self.embedder.encode, texts)
        tokens = sum(self.embedder.count_tokens(t) for t in texts)
        data = []
        for i, vec in enumerate(vectors):
            emb: list[float] | str
            if req.encoding_format == "base64":
                emb = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode("ascii")
            else:
                emb = [float(x) for x in vec]
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return {
            "object": "list",
            "data": data,
            "model": req.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
