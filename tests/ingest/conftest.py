"""Shared fixtures: one real embedder per session, temporary knowledge bases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ingest.embedding import MINILM_MODEL, Embedder
from ingest.knowledge_base import KnowledgeBase

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedder(request: pytest.FixtureRequest) -> Embedder:
    """The default embedder (multilingual USE v3 from its PyPI package), loaded once for the whole run."""
    try:  # the suite-wide one from tests/conftest.py, so the model is loaded once per session
        shared = request.getfixturevalue("shared_embedder")
        if isinstance(shared, Embedder):
            return shared
    except pytest.FixtureLookupError:
        pass
    return Embedder.load(device="cpu")


@pytest.fixture(scope="session")
def minilm_embedder() -> Embedder:
    """all-MiniLM-L6-v2, the English-only default before issue 21 (its collections stay servable)."""
    return Embedder.load(MINILM_MODEL, device="cpu")


@pytest.fixture
def kb(tmp_path: Path, embedder: Embedder) -> KnowledgeBase:
    """An empty knowledge base in a temporary directory."""
    return KnowledgeBase(tmp_path / "collections", embedder, lock_wait_s=0.5)


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[Path]:
    """A small English/Chinese corpus directory."""
    root = tmp_path / "corpus"
    (root / "runbooks").mkdir(parents=True)
    (root / "runbooks" / "pods.md").write_text(
        "# Pod crash loop\n\n## Meaning\n\n"
        "A pod keeps restarting because its container exits with an error.\n\n"
        "## Diagnosis\n\n### Check pod logs\n\n"
        "Run `oc logs <pod> --previous` to read the logs of the crashed "
        "container and look for OutOfMemory errors or stack traces.\n",
        encoding="utf-8",
    )
    (root / "runbooks" / "etcd.md").write_text(
        "# Etcd quota\n\n## Meaning\n\n"
        "The etcd database size is close to its storage quota; "
        "writes will fail when the quota is exceeded.\n\n"
        "## Mitigation\n\nDefragment the etcd members to reclaim disk space.\n",
        encoding="utf-8",
    )
    (root / "network.txt").write_text(
        "DNS resolution fails inside the cluster when the CoreDNS pods are not ready. "
        "Check the dns-default daemonset and the upstream resolvers.\n",
        encoding="utf-8",
    )
    (root / "guide.html").write_text(
        "<html><head><title>Certificates</title><style>.x{color:red}</style></head><body>"
        "<h1>Certificate rotation</h1><p>Expired TLS certificates break the API server; rotate them with "
        "the cert-manager operator.</p><script>var hidden = 'do not index';</script></body></html>",
        encoding="utf-8",
    )
    (root / "zh.md").write_text(
        "# 数据库备份\n\n每天凌晨两点自动备份数据库，备份文件保存在对象存储中，保留三十天。\n\n"
        "# 磁盘告警\n\n当磁盘使用率超过百分之九十时触发告警，需要清理日志文件或者扩容磁盘。\n",
        encoding="utf-8",
    )
    yield root
