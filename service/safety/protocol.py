"""Request model of `POST /v1/moderations` (OpenAI shape)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModerationRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients may send fields we do not use

    input: str | list[str] = Field(description="One text or a list of texts")
    model: str | None = None
