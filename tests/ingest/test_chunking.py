"""Chunking: token budget, overlap, offsets, Markdown headings and CJK sentence ends."""

from __future__ import annotations

from ingest.chunking import Chunker, cjk_ratio, contains_cjk
from ingest.embedding import Embedder
from ingest.loaders.base import LoadedDocument, Section
from ingest.loaders.markdown import split_sections


def _doc(text: str, *, doc_id: str = "d.txt", markdown: bool = False) -> LoadedDocument:
    if markdown:
        sections, title = split_sections(text)
        return LoadedDocument(doc_id, doc_id, "x", sections, {"title": title} if title else {}, markdown=True)
    return LoadedDocument(doc_id, doc_id, "x", [Section(text)], {})


def test_token_budget_offsets_and_ids(embedder: Embedder) -> None:
    chunker = Chunker(embedder.count_tokens, chunk_tokens=60, overlap_tokens=20)
    text = " ".join(
        f"Sentence number {i} explains how the cluster operator reconciles state." for i in range(40)
    )
    chunks = chunker.split(_doc(text))
    assert len(chunks) > 5
    for n, c in enumerate(chunks):
        assert embedder.count_tokens(c.text) <= 60
        assert text[c.start : c.end] == c.text
        assert c.chunk_id == f"d.txt#{n}"
    # consecutive chunks overlap (the second starts before the first ends)
    assert chunks[1].start < chunks[0].end
    # the same input gives the same chunks (stable ids for incremental re-ingest)
    assert [c.text for c in chunker.split(_doc(text))] == [c.text for c in chunks]


def test_cjk_sentences_split_at_full_width_punctuation(embedder: Embedder) -> None:
    chunker = Chunker(embedder.count_tokens, chunk_tokens=40, overlap_tokens=0)
    text = "".join(f"第{i}句话说明了数据库备份的策略和恢复的步骤。" for i in range(12))
    chunks = chunker.split(_doc(text))
    assert len(chunks) > 2
    assert all(c.text.endswith("。") for c in chunks)  # never cut in the middle of a sentence
    assert contains_cjk(text) and cjk_ratio(text) > 0.9
    assert cjk_ratio("restart the pod") == 0.0


def test_markdown_heading_metadata_and_index_text(embedder: Embedder) -> None:
    chunker = Chunker(embedder.count_tokens)
    md = "# Pod crash\n\n## Diagnosis\n\n### Check pod logs\n\nRun oc logs.\n\n## Mitigation\n\nRestart it.\n"
    chunks = chunker.split(_doc(md, doc_id="r.md", markdown=True))
    by_heading = {c.metadata["heading"]: c for c in chunks}
    logs = by_heading["Pod crash > Diagnosis > Check pod logs"]
    assert logs.text == "Run oc logs."
    assert md[logs.start : logs.end] == logs.text
    # retrieval sees the heading path; the stored text stays verbatim
    assert logs.index_text.startswith("Pod crash > Diagnosis > Check pod logs\n")
    assert chunks[0].metadata["title"] == "Pod crash"
