"""Response models of the gateway's routes, and its error envelope, for /openapi.json and /docs.

They describe what the routes return (OpenAI shapes plus ragserve's extensions); answers relayed
from the engine may carry more fields than these list (`extra="allow"`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, ...")
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope; also the last event of a stream that fails after it started."""

    error: ErrorDetail


class Citation(BaseModel):
    index: int = Field(description="The [n] the answer cites")
    chunk_id: str
    document_id: str
    source: str
    page: int | None = None
    score: float
    text: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatChoice(_Open):
    index: int
    message: dict[str, Any] = Field(description="role, content and (function calling) tool_calls")
    finish_reason: str | None = Field(description="stop, length, tool_calls or content_filter")


class ChatCompletion(_Open):
    """`chat.completion`; streamed: `chat.completion.chunk` events, then `data: [DONE]`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    citations: list[Citation] | None = Field(default=None, description="Grounded answers: the passages")
    tool_trace: list[dict[str, Any]] | None = Field(default=None, description="Server tools: the calls made")


class TextChoice(_Open):
    index: int
    text: str
    finish_reason: str | None


class TextCompletion(_Open):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32")


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: dict[str, int]


class ModelCard(_Open):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    parent: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class CollectionInfo(BaseModel):
    name: str
    documents: int
    chunks: int
    embedding_model: str
    dimension: int
    version: int


class CollectionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CollectionInfo]


class Deleted(BaseModel):
    id: str
    object: str = Field(description="collection or document")
    deleted: bool


class DocumentInfo(BaseModel):
    document_id: str
    source: str
    chunks: int
    sha256: str
    ingested_at: str


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentInfo]


class UploadAccepted(BaseModel):
    job_id: str
    status: str
    collection: str
    files: list[str]


class Job(_Open):
    job_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    error: str | None = None
    summary: dict[str, Any] | None = None


class RetrievedPassage(BaseModel):
    chunk_id: str
    document_id: str
    source: str
    page: int | None = None
    score: float
    text: str
    metadata: dict[str, Any]


class RetrieveResponse(BaseModel):
    object: Literal["list"] = "list"
    collection: str
    mode: str
    results: list[RetrievedPassage]


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[dict[str, Any]] = Field(description="Per input: flagged, categories, category_scores")


class LoraResult(_Open):
    """What the engine said, and the adapter's name and path."""
