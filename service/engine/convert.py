"""GGUF -> Hugging Face directory that vLLM serves (safetensors, config, tokenizer, chat template).

transformers loads a GGUF with `gguf_file=` and dequantizes every tensor to float; the model is then
written with the catalog's disk dtype. Checked before anything is kept: the special tokens are the
ones the catalog expects, every parameter really is a dense float on the CPU (transformers can keep
GGUF weights packed when the `kernels` package is present; we refuse that), the chat template renders
an assistant turn, and the written files reload and reproduce the GGUF model's next-token logits.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.engine.catalog import CatalogModel

Log = Callable[[str], None]

# Files every prepared directory holds (others, e.g. chat_template.jinja, depend on the
# transformers version and are listed in the marker).
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)


class ConversionError(RuntimeError):
    """The conversion produced something that is not the GGUF model; one line meant for the user."""


def read_gguf_chat_template(gguf_path: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_path)).get_field("tokenizer.chat_template")
    if field is None:
        raise ConversionError(f"{gguf_path.name} carries no tokenizer.chat_template")
    template = field.contents()
    if not isinstance(template, str) or "<|im_start|>" not in template:
        raise ConversionError(f"{gguf_path.name}: unexpected tokenizer.chat_template")
    return template


def _dtype_kw(torch_dtype: Any) -> dict[str, Any]:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": torch_dtype} if (major, minor) >= (4, 56) else {"torch_dtype": torch_dtype}


def _drop_quantization_markers(model: Any) -> None:
    """transformers marks GGUF-loaded models as quantized and then refuses save_pretrained.

    The weights are already dequantized to float, so the markers are simply removed.
    """
    for attr, value in (("hf_quantizer", None), ("quantization_method", None), ("is_quantized", False)):
        if hasattr(model, attr):
            with contextlib.suppress(AttributeError):
                setattr(model, attr, value)
    for cfg in (model.config, getattr(model.config, "text_config", None)):
        if cfg is not None and hasattr(cfg, "quantization_config"):
            with contextlib.suppress(AttributeError):
                delattr(cfg, "quantization_config")


def _rewrite_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def pkg_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def convert(spec: CatalogModel, gguf_path: Path, out: Path, log: Log) -> dict[str, Any]:
    """Convert the GGUF into an HF directory at `out` (which exists and is empty).

    Returns the facts for the marker (params, dtype, versions, special tokens).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log("importing torch and transformers")
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    src_dir, src_name = str(gguf_path.parent), gguf_path.name
    chat_template = read_gguf_chat_template(gguf_path)
    disk_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec.disk_dtype]

    log("loading the tokenizer from the GGUF")
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_name, local_files_only=True)
    if tok.eos_token != spec.eos_token or tok.bos_token != spec.bos_token:
        # The GGUF tokenizer's eos may be <|endoftext|>; the chat turn end is what serving needs.
        eos_id = tok.convert_tokens_to_ids(spec.eos_token)
        if tok.bos_token != spec.bos_token or not isinstance(eos_id, int) or eos_id < 0:
            raise ConversionError(
                f"unexpected special tokens in {src_name}: bos={tok.bos_token!r} eos={tok.eos_token!r} "
                f"(expected bos={spec.bos_token!r} eos={spec.eos_token!r})"
            )
    eos_raw = tok.convert_tokens_to_ids(spec.eos_token)
    eos_id = int(eos_raw) if isinstance(eos_raw, int) else -1
    if eos_id != spec.stop_token_ids[0]:
        raise ConversionError(
            f"{src_name}: {spec.eos_token} has id {eos_id}, expected {spec.stop_token_ids[0]}"
        )
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_id
    special_ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
    }
    added = [t.content for _, t in sorted(tok.added_tokens_decoder.items()) if t.special]

    log(f"loading and dequantizing the weights ({spec.source.quantization} -> float32)")
    model = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=src_name, local_files_only=True, **_dtype_kw(torch.float32)
    )
    _drop_quantization_markers(model)
    for name, param in model.named_parameters():
        if param.dtype != torch.float32 or param.device.type != "cpu":
            raise ConversionError(
                f"conversion left {name} as {param.dtype} on {param.device} (still packed?)"
            )
    params = int(sum(p.numel() for p in model.parameters()))
    max_len = int(model.config.max_position_embeddings)
    for key, value in special_ids.items():
        setattr(model.config, key, value)
        setattr(model.generation_config, key, value)
    # Generation stops at the end of the turn or at the end of text (vLLM reads this list).
    model.generation_config.eos_token_id = list(spec.stop_token_ids)
    model.generation_config.do_sample = False
    for k in ("temperature", "top_p", "top_k", "repetition_penalty"):
        if hasattr(model.generation_config, k):
            with contextlib.suppress(AttributeError):
                setattr(model.generation_config, k, None)

    prompt_ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = torch.tensor([tok(str(prompt_ids))["input_ids"]])
    with torch.inference_mode():
        reference = model(ids).logits[0, -1].float()

    log(f"writing safetensors ({params / 1e6:.0f}M parameters, {spec.disk_dtype})")
    if disk_dtype != torch.float32:
        model = model.to(disk_dtype)  # type: ignore[arg-type]
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    del model

    def _fix_config(cfg: dict[str, Any]) -> None:
        cfg.pop("quantization_config", None)
        cfg.pop("_model_name_or_path", None)
        cfg.pop("_name_or_path", None)
        cfg.update(special_ids)

    def _fix_generation_config(cfg: dict[str, Any]) -> None:
        cfg["eos_token_id"] = list(spec.stop_token_ids)

    def _fix_tokenizer_config(cfg: dict[str, Any]) -> None:
        for key in ("is_local", "local_files_only", "name_or_path", "_name_or_path"):
            cfg.pop(key, None)
        # Loadable by transformers 4.x and 5.x alike (5.x aliases it to TokenizersBackend).
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg["chat_template"] = chat_template
        cfg["bos_token"], cfg["eos_token"] = spec.bos_token, spec.eos_token
        cfg["pad_token"] = tok.pad_token or spec.eos_token
        cfg["unk_token"] = tok.unk_token
        cfg["add_bos_token"] = False
        cfg["add_eos_token"] = False
        cfg["clean_up_tokenization_spaces"] = False
        cfg["model_max_length"] = max_len
        cfg["additional_special_tokens"] = [
            t for t in added if t not in (spec.bos_token, spec.eos_token, tok.unk_token, cfg["pad_token"])
        ]

    _rewrite_json(out / "config.json", _fix_config)
    _rewrite_json(out / "generation_config.json", _fix_generation_config)
    _rewrite_json(out / "tokenizer_config.json", _fix_tokenizer_config)
    if (out / "chat_template.jinja").exists():
        (out / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    for name in REQUIRED_FILES:
        if not (out / name).is_file():
            raise ConversionError(f"conversion did not produce {name}")
    if not list(out.glob("*.safetensors")):
        raise ConversionError("conversion did not produce safetensors weights")

    log("checking the written directory (reload + compare logits)")
    cfg = AutoConfig.from_pretrained(str(out), local_files_only=True)
    if getattr(cfg, "quantization_config", None) is not None:
        raise ConversionError("the written config still carries a quantization_config")
    tok2 = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    if tok2.eos_token_id != eos_id or tok2.chat_template != chat_template:
        raise ConversionError("the written tokenizer lost its eos token or chat template")
    prompt = tok2.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    if not str(prompt).endswith("<|im_start|>assistant\n"):
        raise ConversionError("the written chat template renders an unexpected prompt")
    reloaded = AutoModelForCausalLM.from_pretrained(
        str(out), local_files_only=True, **_dtype_kw(torch.float32)
    )
    with torch.inference_mode():
        got = reloaded(ids).logits[0, -1].float()
    del reloaded
    if disk_dtype == torch.float32:
        same = bool(torch.allclose(reference, got, atol=1e-4, rtol=1e-4))
    else:
        # bf16 rounding of the weights: the same next token and near-identical logits.
        same = (
            int(reference.argmax()) == int(got.argmax())
            and float(torch.nn.functional.cosine_similarity(reference, got, dim=0)) > 0.995
        )
    if not same:
        raise ConversionError("the written weights do not reproduce the GGUF model's logits")

    return {
        "params": params,
        "dtype": spec.disk_dtype,
        "architecture": (cfg.architectures or ["?"])[0],
        "max_position_embeddings": max_len,
        "special_tokens": {
            "bos_token": spec.bos_token,
            "eos_token": spec.eos_token,
            "pad_token": tok.pad_token,
            "unk_token": tok.unk_token,
            "stop_token_ids": list(spec.stop_token_ids),
            **special_ids,
        },
        "versions": {
            "transformers": transformers.__version__,
            "torch": str(torch.__version__),
            "gguf": pkg_version("gguf"),
        },
    }
