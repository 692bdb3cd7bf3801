"""HTML to visible text, importable and runnable alone: `python -I _html_worker.py MEM_BYTES < markup`.

It imports nothing from this project (only bs4), so the loader can run it in a child process with a
memory cap and a timeout: BeautifulSoup's tree building is quadratic in nesting depth (a 220 KB
file of 20,000 nested <div>s took 280 s here), so deep or large markup is parsed out of process.
The child reads UTF-8 markup on stdin and prints one JSON object: {"text", "title"} or {"error"}.
"""

import json
import re
import resource
import sys

_INVISIBLE = ["script", "style", "noscript", "template", "head", "svg", "iframe", "object"]
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def html_to_text(markup: str) -> "tuple[str, str | None]":
    """Visible text (blank lines collapsed) and the <title>."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else None
    for tag in soup(_INVISIBLE):
        tag.decompose()
    for tag in soup.find_all(True):
        if getattr(tag, "decomposed", False) or tag.attrs is None:
            continue  # inside an element removed earlier in this loop
        if (
            tag.has_attr("hidden")
            or tag.get("aria-hidden") == "true"
            or _HIDDEN_STYLE.search(str(tag.get("style", "")))
        ):
            tag.decompose()
    text = soup.get_text("\n")
    lines = [re.sub(r"[ \t\xa0]+", " ", ln).strip() for ln in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip(), title or None


def main() -> None:
    mem = int(sys.argv[1])
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    sys.setrecursionlimit(10_000)
    try:
        markup = sys.stdin.buffer.read().decode("utf-8", "replace")
        text, title = html_to_text(markup)
        out: dict[str, object] = {"text": text, "title": title}
    except MemoryError:
        out = {"error": "HTML needs more memory than allowed to parse"}
    except RecursionError:
        out = {"error": "HTML is nested too deeply to parse"}
    except Exception as exc:  # report any parser failure as one line
        out = {"error": f"cannot parse HTML ({type(exc).__name__}: {exc})"}
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
