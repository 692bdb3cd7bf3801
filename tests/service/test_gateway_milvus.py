"""The gateway's HTTP contract with `store.backend=milvus` (Milvus Lite on a file in the data dir).

The same test functions as tests/service/test_gateway_api.py run against a gateway whose
collections live in Milvus: upload, jobs, documents, retrieve, delete, RAG chat with citations,
streaming, /v1/models and the index gauges of /metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from service.settings import StoreSettings
from tests.service import test_gateway_api as api
from tests.service.conftest import CORPUS, corpus_gateway
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import Gateway


@pytest.fixture(scope="module")
def milvus_gateway(
    fake_engine: tuple[str, FakeVLLM], shared_embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    store = StoreSettings(backend="milvus")
    with corpus_gateway(fake_engine, shared_embedder, tmp_path_factory, "gateway-milvus", store=store) as gw:
        yield gw


@pytest.mark.parametrize(
    "contract",
    [
        api.test_models_lists_base_embedder_and_rag_collections,
        api.test_rag_chat_grounds_prompt_and_returns_citations,
        api.test_rag_extension_field_on_base_model,
        api.test_rag_chinese_question_uses_chinese_template,
        api.test_streaming_sse_framing_and_citations_on_final_chunk,
        api.test_retrieve,
        api.test_collection_lifecycle_upload_jobs_and_delete,
        api.test_upload_rejects_traversal_and_reports_bad_files,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_http_contract_on_milvus(contract: Callable[[Gateway], None], milvus_gateway: Gateway) -> None:
    contract(milvus_gateway)


def test_collections_and_index_gauges_come_from_milvus(milvus_gateway: Gateway) -> None:
    assert not (milvus_gateway.settings.collections_dir).exists()  # nothing went to FAISS directories
    assert (milvus_gateway.settings.data_dir / "milvus.db").exists()
    listed = httpx.get(milvus_gateway.v1 + "/collections").json()["data"]
    default = next(c for c in listed if c["name"] == "default")
    assert default["documents"] == len(CORPUS) and default["chunks"] >= len(CORPUS)
    assert milvus_gateway.metric("ragserve_index_chunks", collection="default") == default["chunks"]
    assert milvus_gateway.metric("ragserve_index_documents", collection="default") == len(CORPUS)
