"""Offline quantization of the default model into checkpoints vLLM serves (docs/quantization.md)."""
