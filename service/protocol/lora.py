"""Request models of the LoRA admin routes: vLLM's own shapes, so vLLM clients and scripts work as is."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class LoadLoraAdapterRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # vLLM's load_inplace/is_3d_lora_weight are not relayed

    lora_name: str = Field(min_length=1, max_length=128)
    lora_path: str = Field(min_length=1, max_length=4096)

    @field_validator("lora_path")
    @classmethod
    def _a_possible_path(cls, v: str) -> str:
        # The file system refuses these with an OSError (ENAMETOOLONG, or a NUL): a 400, not a 500.
        if "\x00" in v:
            raise ValueError("the path must not contain NUL characters")
        if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in v.split("/")):
            raise ValueError("each part of the path must be at most 255 bytes")
        return v


class UnloadLoraAdapterRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # vLLM's lora_int_id

    lora_name: str = Field(min_length=1, max_length=128)
