"""Hand-built minimal PDFs for tests (no PDF writer library needed)."""

from __future__ import annotations

from pathlib import Path


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    path: Path, pages: list[list[str]], *, title: str | None = None, author: str | None = None
) -> Path:
    """Write a PDF whose pages show the given lines in Helvetica; an empty list makes a blank page."""
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1 catalog, 2 pages, 3 font, 4 info, then (page, content) pairs.
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info = []
    if title:
        info.append(f"/Title ({_escape(title)})")
    if author:
        info.append(f"/Author ({_escape(author)})")
    objects.append(f"<< {' '.join(info)} >>".encode())
    for i, lines in enumerate(pages):
        content_ref = 6 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_ref} 0 R "
            f"/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode() if lines else b""
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for num, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{num} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R /Info 4 0 R >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def make_text_bomb(path: Path, depth: int = 5, fanout: int = 10, line: str = "A" * 100) -> Path:
    """A tiny PDF whose text multiplies: nested form XObjects, each drawing the next `fanout` times."""
    objs: list[bytes] = []
    # 1 catalog, 2 pages, 3 page, 4 font, 5 page content, 6.. forms X1..Xdepth
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    objs.append(
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 4 0 R >> /XObject << /X1 6 0 R >> >> >>"
    )
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")

    def stream(body: bytes, extra: bytes = b"") -> bytes:
        return (
            b"<< " + extra + b" /Length " + str(len(body)).encode() + b" >>\nstream\n" + body + b"\nendstream"
        )

    objs.append(stream(b"/X1 Do"))
    for level in range(1, depth + 1):
        res = b"/Resources << /Font << /F1 4 0 R >>"
        if level < depth:
            res += b" /XObject << /X%d %d 0 R >>" % (level + 1, 6 + level)
            body = b" ".join([b"/X%d Do" % (level + 1)] * fanout)
        else:
            body = b"BT /F1 12 Tf 72 720 Td (" + line.encode() + b") Tj ET"
        res += b" >>"
        objs.append(stream(body, b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] " + res))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path
