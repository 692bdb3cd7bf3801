"""PDF text extractor run in a child process: `python -I _pdf_worker.py FILE MAX_PAGES MEM_BYTES MAX_CHARS`.

It imports nothing from this project so the child starts fast and shares no state;
it prints one JSON object on stdout: {"pages", "title", "author"} or {"error"}.
"""

import json
import resource
import sys


class _TooMuchText(BaseException):  # BaseException: pypdf catches Exception around form XObjects
    pass


def _extract(path: str, max_pages: int, max_chars: int) -> dict[str, object]:
    import pypdf
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted:
            try:
                ok = bool(reader.decrypt(""))
            except Exception:  # unsupported crypto raises several kinds
                ok = False
            if not ok:
                return {"error": "encrypted PDF (password protected): remove the password and retry"}
        n = len(reader.pages)
        if n > max_pages:
            return {"error": f"PDF has {n} pages, more than the limit of {max_pages}"}
        # Text is counted as pypdf produces it (form XObjects drawn inside each other multiply a few
        # bytes into megabytes): past max_chars extraction stops, holding no more than that.
        total = 0

        def count(text: str, *_args: object) -> None:
            nonlocal total
            total += len(text)
            if total > max_chars:
                raise _TooMuchText

        pages: list[str] = []
        try:
            for p in reader.pages:
                pages.append(p.extract_text(visitor_text=count) or "")
        except _TooMuchText:
            return {"error": f"extracted text is over the per-document limit of {max_chars} characters"}
        info: dict[str, object] = dict(reader.metadata or {})
        return {
            "pages": pages,
            "title": str(info.get("/Title") or "") or None,
            "author": str(info.get("/Author") or "") or None,
        }
    except FileNotDecryptedError:
        return {"error": "encrypted PDF (password protected): remove the password and retry"}
    except PdfReadError as exc:
        return {"error": f"not a readable PDF ({exc})"}


def main() -> None:
    path, max_pages, mem, max_chars = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    try:
        out = _extract(path, max_pages, max_chars)
    except MemoryError:
        out = {"error": "PDF needs more memory than allowed to parse"}
    except Exception as exc:  # report any parser failure as one line
        out = {"error": f"not a readable PDF ({type(exc).__name__}: {exc})"}
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
