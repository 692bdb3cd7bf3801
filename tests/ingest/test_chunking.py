"""Chunking: token budget, overlap, offsets, Markdown headings and CJK sentence ends."""

from __future__ import annotations

import itertools
import random

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


def test_text_without_separators_is_cut_in_linear_work(embedder: Embedder) -> None:
    """A blob or unpunctuated Chinese has nothing to split on: the splitter must not measure every character.

    langchain's last resort measures single characters (one tokenizer call each: ~75 s per MB);
    chunking cuts such a run into runs of chunk_size/8 characters instead. Counted, not timed.
    """
    calls = 0

    def counted(text: str) -> int:
        nonlocal calls
        calls += 1
        return embedder.count_tokens(text)

    rng = random.Random(3)
    blob = "".join(rng.choice("0123456789abcdef") for _ in range(40_000))  # like a hex or base64 dump
    chinese = "".join(chr(0x4E00 + rng.randrange(2000)) for _ in range(12_000))
    for text in (blob, chinese):
        chunker = Chunker(counted, chunk_tokens=120, overlap_tokens=20)
        calls = 0
        chunks = chunker.split(_doc(text))
        assert calls < len(text) / 4, (calls, len(text))  # per character it was > len(text)
        assert chunks[0].start == 0 and chunks[-1].end == len(text)  # the whole text is covered
        for prev, c in itertools.pairwise(chunks):
            assert c.start <= prev.end  # contiguous or overlapping, never a gap
        for c in chunks:
            assert text[c.start : c.end] == c.text
            assert embedder.count_tokens(c.text) <= 120


def test_words_are_measured_once(embedder: Embedder) -> None:
    """Text with spaces only is split into words; a repeated word costs one tokenizer call, not one each."""
    calls = 0

    def counted(text: str) -> int:
        nonlocal calls
        calls += 1
        return embedder.count_tokens(text)

    vocab = [f"word{i}" for i in range(50)]
    text = " ".join(vocab[(i * 7) % 50] for i in range(20_000))
    chunks = Chunker(counted, chunk_tokens=100, overlap_tokens=10).split(_doc(text))
    assert calls < 5_000, calls  # 20,000 words, 50 distinct
    assert all(embedder.count_tokens(c.text) <= 100 for c in chunks)
    assert chunks[-1].end == len(text)
