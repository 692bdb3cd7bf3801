"""Request models for the OpenAI-compatible endpoints, plus ragserve's extensions.

The gateway forwards generation requests to vLLM's own OpenAI server, so these models check
what the gateway itself relies on (model, messages, streaming, limits, the `rag` extension)
and keep every other field (`extra="allow"`) to pass it through untouched.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

RetrievalMode = Literal["hybrid", "dense", "bm25"]

# Fields vLLM's OpenAI server understands beyond OpenAI's own; anything else unknown is logged.
_KNOWN_EXTRAS = {
    "top_k",
    "min_p",
    "repetition_penalty",
    "ignore_eos",
    "min_tokens",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "structured_outputs",
    "chat_template_kwargs",
    "add_generation_prompt",
    "continue_final_message",
    "echo",
    "include_stop_str_in_output",
    "stop_token_ids",
    "truncate_prompt_tokens",
    "priority",
    "request_id",
    "best_of",
    "use_beam_search",
    "length_penalty",
    "prompt_logprobs",
    "allowed_token_ids",
    "bad_words",
    "documents",
    "chat_template",
    "return_tokens_as_token_ids",
    "suffix",
    "metadata",
    "store",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "service_level",
    "service_tier",
    "web_search_options",
    "vllm_xargs",
    "kv_transfer_params",
    "cache_salt",
}


class _Permissive(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="after")
    def _log_unknown(self) -> _Permissive:
        extra = set((self.model_extra or {}).keys()) - _KNOWN_EXTRAS
        if extra:
            logger.debug("%s: passing through unrecognised fields %s", type(self).__name__, sorted(extra))
        return self


class RagOptions(BaseModel):
    """The `rag` extension: ground the answer in a collection."""

    model_config = ConfigDict(extra="forbid")

    collection: str | None = None
    top_k: int | None = Field(default=None, ge=1, le=100)
    mode: RetrievalMode | None = None
    filters: dict[str, Any] | None = None
    language: Literal["auto", "en", "zh"] = "auto"
    # Optional retrieval query; by default the last user message.
    query: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None
    continuous_usage_stats: bool | None = None


class _GenerationCommon(_Permissive):
    model: str = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int | None = Field(default=1, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    rag: RagOptions | None = None

    @field_validator("n")
    @classmethod
    def _only_one(cls, v: int | None) -> int | None:
        if v is not None and v != 1:
            raise ValueError("only n=1 is supported")
        return v

    @field_validator("stop")
    @classmethod
    def _stop_limit(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return v


# Content part types whose text the engine renders (vLLM 0.32's chat_utils), and the field holding it.
TEXT_PART_FIELDS: dict[str, str] = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "refusal": "refusal",
    "thinking": "thinking",
}
# Media parts passed on to the engine (which refuses them for a text model); any other type is a 400.
MEDIA_PART_TYPES = frozenset({"image_url", "input_image", "audio_url", "input_audio", "video_url"})


def content_text(content: Any) -> str:
    """The text of a message's content as the engine renders it: text-bearing parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for p in content:
            field = TEXT_PART_FIELDS.get(str(p.get("type"))) if isinstance(p, dict) else None
            if field is not None and isinstance(p.get(field), str):
                texts.append(p[field])
        return "\n".join(texts)
    return str(content)


class ChatMessage(_Permissive):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, joining the text-bearing parts of multi-part content."""
        return content_text(self.content)


class ResponseFormat(_Permissive):
    type: Literal["text", "json_object", "json_schema", "structural_tag"]
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(_GenerationCommon):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None

    @model_validator(mode="after")
    def _json_schema_present(self) -> ChatCompletionRequest:
        rf = self.response_format
        if rf is not None and rf.type == "json_schema" and not rf.json_schema:
            raise ValueError("response_format.json_schema is required when type is 'json_schema'")
        return self

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_GenerationCommon):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)

    def output_limit(self) -> int | None:
        return self.max_tokens


class EmbeddingRequest(_Permissive):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=8192)
    collection: str | None = None
    top_k: int = Field(default=4, ge=1, le=100)
    mode: RetrievalMode | None = None
    filters: dict[str, Any] | None = None


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
