"""Limits and isolation of the parsers: HTML bombs, huge markup and text, a Markdown ReDoS, PDF text bombs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import LoaderError
from ingest.knowledge_base import KnowledgeBase
from ingest.loaders import Limits, load_file
from ingest.loaders.html import nesting_depth
from ingest.loaders.markdown import split_sections

from .pdfgen import make_text_bomb

PAGE = (
    "<html><head><title>Certs</title><script>var s = 'no';</script></head><body>"
    "<h1>Certificate rotation</h1><p>Rotate expired TLS certificates.</p><p hidden>secret</p></body></html>"
)


def _bomb(depth: int) -> str:
    return "<html><body>" + "<div>" * depth + "deep text" + "</div>" * depth + "</body></html>"


def test_nesting_depth_follows_the_tree_builder() -> None:
    assert nesting_depth("<div>" * 10, 1000) == 10
    assert nesting_depth("<div></div>" * 10, 1000) == 1
    assert nesting_depth("<div></span>" * 10, 1000) == 10  # stray end tags cannot hide depth
    assert nesting_depth("<p><br><img src=x><hr/><input></p>", 1000) == 1  # void and self-closing
    assert nesting_depth("<ul><li><b>x</ul><ul>", 1000) == 3  # </ul> closes the <li> and <b> inside it
    assert nesting_depth("<div>" * 10_000, 50) == 50  # stops counting at the limit


def test_large_html_is_parsed_in_a_child_process(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(PAGE.replace("</body>", "<p>" + "filler words " * 200 + "</p></body>"))
    inline = load_file(page, "p.html")
    isolated = load_file(page, "p.html", Limits(html_inline_bytes=100))  # over it: the child parses
    assert isolated[0].sections[0].text == inline[0].sections[0].text
    assert "Rotate expired TLS certificates." in isolated[0].sections[0].text
    assert "secret" not in isolated[0].sections[0].text and "no" not in isolated[0].sections[0].text.split()
    assert isolated[0].metadata["title"] == "Certs"
    # The child runs under the memory cap: 2 MB of markup needs more than 64 MB of parse tree.
    heavy = tmp_path / "heavy.html"
    heavy.write_text("<html><body>" + "<p>lots of words here</p>" * 80_000 + "</body></html>")
    with pytest.raises(LoaderError, match="more memory than allowed"):
        load_file(heavy, "heavy.html", Limits(max_memory_bytes=64 * 1024 * 1024))


def test_html_size_and_depth_limits(tmp_path: Path) -> None:
    big = tmp_path / "big.html"
    big.write_text("<html><body>" + "<p>lots of words here</p>" * 2000 + "</body></html>")
    with pytest.raises(LoaderError, match="over the limit"):
        load_file(big, "big.html", Limits(max_html_bytes=10_000))
    bomb = tmp_path / "bomb.html"
    bomb.write_text(_bomb(6000))  # 66 KB that would keep BeautifulSoup busy for minutes
    with pytest.raises(LoaderError, match="levels deep"):
        load_file(bomb, "bomb.html")


def test_deep_html_under_the_refusal_depth_times_out_in_its_child(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.html"
    bomb.write_text(_bomb(20_000))  # ~280 s to parse in process on this machine
    with pytest.raises(LoaderError, match="longer than 2 s"):
        load_file(bomb, "bomb.html", Limits(max_html_depth=100_000, parse_timeout_s=2))


def test_text_size_limit(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("pod restarted\n" * 1000)
    with pytest.raises(LoaderError, match="split the file"):
        load_file(log, "big.log", Limits(max_text_bytes=5000))
    md = tmp_path / "big.md"
    md.write_text("# T\n\n" + "word " * 2000)
    with pytest.raises(LoaderError, match="split the file"):
        load_file(md, "big.md", Limits(max_text_bytes=5000))
    assert load_file(md, "big.md")[0].metadata["title"] == "T"


@pytest.mark.timeout(60)
def test_markdown_heading_regex_is_linear() -> None:
    # "(.+?)[ \t#]*$" took 20 s on a 64 KB line of " #"; this line is 640 KB.
    sections, title = split_sections("# a" + " #" * 320_000 + "x\n\nbody\n")
    assert title is not None and title.startswith("a #") and title.endswith("x")
    assert sections[0].text == "body"
    assert split_sections("# C# ##\n\nx\n")[1] == "C"  # closing hashes stripped as before


def test_bomb_in_a_batch_is_one_failure(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bomb.html").write_text(_bomb(6000))
    (docs / "certs.html").write_text(PAGE)
    (docs / "etcd.md").write_text("# Etcd\n\nThe etcd database is close to its quota.\n")
    summary = kb.ingest_paths("c", [docs])
    assert (summary.added, summary.failed) == (2, 1)
    assert summary.failures[0].source == "bomb.html" and "levels deep" in summary.failures[0].reason
    assert kb.search("c", "rotate TLS certificates", top_k=1)[0].document_id == "certs.html"


def test_pdf_text_expansion_is_capped_per_document(tmp_path: Path) -> None:  # issue 19, finding 7
    # 1.6 KB of nested form XObjects: 1,000 draws of a 100-character line, 101k characters of text.
    bomb = make_text_bomb(tmp_path / "bomb.pdf", depth=4, fanout=10)
    assert bomb.stat().st_size < 2000
    assert len(load_file(bomb, "bomb.pdf")[0].sections[0].text) > 100_000  # what it expands to today
    with pytest.raises(LoaderError, match="over the per-document limit of 50000 characters"):
        load_file(bomb, "bomb.pdf", Limits(max_document_chars=50_000))


def test_text_cap_applies_to_every_format(tmp_path: Path) -> None:
    html = tmp_path / "p.html"
    html.write_text("<p>" + "word " * 3000 + "</p>")
    records = tmp_path / "r.jsonl"
    records.write_text('{"id": "small", "text": "ok"}\n{"id": "big", "text": "' + "x" * 20_000 + '"}\n')
    limits = Limits(max_document_chars=10_000)
    with pytest.raises(LoaderError, match="per-document limit"):
        load_file(html, "p.html", limits)
    with pytest.raises(LoaderError, match=r"record 'big'.*per-document limit"):
        load_file(records, "r.jsonl", limits)
    assert load_file(records, "r.jsonl", Limits(max_document_chars=20_000))[1].document_id == "big"


def test_a_capped_pdf_is_one_failure_in_a_batch(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_text_bomb(docs / "bomb.pdf", depth=4, fanout=10)
    (docs / "ok.txt").write_text("The on-call rota lives in the wiki.\n")
    capped = KnowledgeBase(kb.root, kb.embedder, limits=Limits(max_document_chars=50_000))
    s = capped.ingest_paths("c", [docs])
    assert s.added == 1 and [f.source for f in s.failures] == ["bomb.pdf"]
    assert "per-document limit" in s.failures[0].reason
