"""Request models of the LoRA admin routes: vLLM's own shapes, so vLLM clients and scripts work as is."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LoadLoraAdapterRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # vLLM's load_inplace/is_3d_lora_weight are not relayed

    lora_name: str = Field(min_length=1, max_length=128)
    lora_path: str = Field(min_length=1, max_length=4096)


class UnloadLoraAdapterRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # vLLM's lora_int_id

    lora_name: str = Field(min_length=1, max_length=128)
