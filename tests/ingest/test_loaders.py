"""Loaders: one per format, limits and isolation of PDF parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from ingest.errors import LoaderError
from ingest.loaders import Limits, load_file
from ingest.loaders.markdown import split_sections

from .pdfgen import make_pdf


def test_pdf_pages_and_metadata(tmp_path: Path) -> None:
    pdf = make_pdf(
        tmp_path / "m.pdf",
        [["Install the operator first."], [], ["Then restart the (api) server."]],
        title="Ops Manual",
        author="SRE Team",
    )
    [doc] = load_file(pdf, "m.pdf")
    assert [s.page for s in doc.sections] == [1, 3]  # the blank page 2 has no section
    assert "Install the operator" in doc.sections[0].text
    assert "restart the (api) server" in doc.sections[1].text
    assert doc.metadata["title"] == "Ops Manual"
    assert doc.metadata["author"] == "SRE Team"
    assert doc.metadata["pages"] == 3


def test_pdf_image_only_is_a_clear_error(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(LoaderError, match="no extractable text"):
        load_file(pdf, "scan.pdf")


def test_pdf_encrypted_is_a_clear_error(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "p.pdf", [["secret runbook"]])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="hunter2", algorithm="RC4-128")
    enc = tmp_path / "enc.pdf"
    with open(enc, "wb") as fh:
        writer.write(fh)
    with pytest.raises(LoaderError, match="encrypted"):
        load_file(enc, "enc.pdf")


def test_pdf_garbage_and_timeout(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 100)
    with pytest.raises(LoaderError, match=r"bad\.pdf"):
        load_file(bad, "bad.pdf")
    notpdf = tmp_path / "x.pdf"
    notpdf.write_text("hello")
    with pytest.raises(LoaderError, match="not a PDF"):
        load_file(notpdf, "x.pdf")
    ok = make_pdf(tmp_path / "ok.pdf", [["fine"]])
    # The parser runs in a child process: a deadline shorter than its start-up must kill it cleanly.
    with pytest.raises(LoaderError, match="longer than"):
        load_file(ok, "ok.pdf", Limits(parse_timeout_s=0.001))
    with pytest.raises(LoaderError, match="more than the limit"):
        load_file(ok, "ok.pdf", Limits(max_pages=0))


def test_size_limit_and_unsupported(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    with pytest.raises(LoaderError, match="per-file limit"):
        load_file(big, "big.txt", Limits(max_file_bytes=1000))
    with pytest.raises(LoaderError, match="unsupported"):
        load_file(tmp_path / "a.docx", "a.docx")


def test_markdown_heading_paths() -> None:
    text = (
        "# Runbook\n\nIntro.\n\n## Diagnosis\n\n### Check pod logs\n\nRun oc logs.\n\n"
        "```bash\n# not a heading\necho hi\n```\n\n## Mitigation\n\nRestart.\n"
    )
    sections, title = split_sections(text)
    assert title == "Runbook"
    assert [s.heading for s in sections] == [
        "Runbook",
        "Runbook > Diagnosis > Check pod logs",
        "Runbook > Mitigation",
    ]
    logs = sections[1]
    assert "# not a heading" in logs.text  # fenced code is not split at its comment lines
    assert text[logs.offset : logs.offset + len(logs.text)] == logs.text


def test_html_visible_text_only(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<html><head><title>T</title><style>p{}</style></head><body><p>Visible words</p>"
        "<div hidden>hidden one</div><p style='display: none'>hidden two</p>"
        "<script>var x='script text'</script></body></html>"
    )
    [doc] = load_file(page, "p.html")
    text = doc.sections[0].text
    assert "Visible words" in text
    for gone in ("hidden one", "hidden two", "script text", "p{}"):
        assert gone not in text
    assert doc.metadata["title"] == "T"


def test_jsonl_records(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    recs = [
        {"id": "a", "text": "alpha text", "title": "Alpha", "metadata": {"team": "db"}},
        {"id": 7, "text": "seven"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    docs = load_file(f, "c.jsonl")
    assert [d.document_id for d in docs] == ["a", "7"]
    assert docs[0].metadata["title"] == "Alpha" and docs[0].metadata["team"] == "db"
    assert docs[0].sha256 != docs[1].sha256
    f.write_text(json.dumps(recs[0]) + "\n{not json\n")
    with pytest.raises(LoaderError, match="line 2"):
        load_file(f, "c.jsonl")
    f.write_text(json.dumps({"text": "no id"}) + "\n")
    with pytest.raises(LoaderError, match='missing "id"'):
        load_file(f, "c.jsonl")


def test_text_encodings(tmp_path: Path) -> None:
    f = tmp_path / "gbk.txt"
    f.write_bytes("数据库备份完成".encode("gb18030"))
    [doc] = load_file(f, "gbk.txt")
    assert doc.sections[0].text == "数据库备份完成"
    b = tmp_path / "bin.txt"
    b.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(LoaderError, match="binary"):
        load_file(b, "bin.txt")
