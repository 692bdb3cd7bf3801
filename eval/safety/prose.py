"""Long benign prose for the semantic injection stage: knowledge-base chunks in several languages.

    .venv/bin/python -m eval.safety.prose [--head general|prose] [--out var/prose.json]   # FPR per language

A knowledge base hands the context guard 500-character chunks of ordinary documents; a head trained on
English ops text and short questions read long Chinese encyclopedia text as an attack (40% of CMRC
chunks above the context threshold 0.7). This module builds such chunks and splits them *by document*
before anything is measured: the training half may train the head and choose its numbers, the held-out
half is only scored.

Sources (nothing is downloaded; each is skipped when absent):
- `zh_cmrc`: the CMRC 2018 trial documents (Chinese encyclopedia articles, ../shared/data/cmrc2018),
  split by a hash of the document id (eval/datasets/runbooks.tune_split);
- `en_runbooks`: the OpenShift operator runbooks (../shared/data/runbooks-openshift), split by operator
  folder as eval/safety/train_semantic.py does (even folders train, odd folders are held out), plus
  the project's sample corpus (deploy/sample_corpus) on the training side;
- `man_<lang>`: the translated Debian manual pages of this machine (/usr/share/man/<lang>, man-db,
  procps, xz, vim, apt...: technical prose in German, French, Spanish, Italian, Portuguese, Polish,
  Dutch, Swedish, Russian, Ukrainian, Japanese, Korean, Chinese, Turkish), split by page *name*, so
  one page in two languages never sits on both sides.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eval.datasets.runbooks import tune_split

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
CHUNK_CHARS = 500  # the size the lead measured with (the gateway's chunks are of this order)
MAN_LANGS = ("de", "fr", "es", "it", "pt", "pl", "nl", "sv", "ru", "uk", "ja", "ko", "zh_CN", "tr")
PER_SOURCE = 300  # chunks per (source, half) at most, drawn evenly at random (seeded)
_SENT = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；\n])\s*")  # "v4.9", "hco.kubevirt.io" stay whole


@dataclass(frozen=True)
class Passage:
    text: str
    source: str  # zh_cmrc, en_runbooks, man_de, ...
    lang: str
    doc: str
    train: bool  # True: the training half (may be read by training); False: held out


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Whole sentences packed into chunks of at most `size` characters (a longer sentence is cut)."""
    out: list[str] = []
    cur = ""
    for sent in _SENT.split(re.sub(r"[ \t]+", " ", text)):
        sent = sent.replace("\n", " ")
        sent = sent.strip()
        while len(sent) > size:
            if cur:
                out.append(cur)
                cur = ""
            out.append(sent[:size])
            sent = sent[size:]
        if not sent:
            continue
        if cur and len(cur) + 1 + len(sent) > size:
            out.append(cur)
            cur = ""
        cur = f"{cur} {sent}" if cur else sent
    if cur:
        out.append(cur)
    return [c for c in out if len(c) >= 80]


def cmrc(path: Path | None = None) -> list[Passage]:
    """CMRC 2018 trial documents as chunks (a JSON release file or a corpus JSONL of {id, text})."""
    path = path or SHARED / "cmrc2018" / "cmrc2018_trial.json"
    if not path.is_file():
        return []
    docs: list[tuple[str, str]] = []
    if path.suffix == ".jsonl":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                docs.append((str(row["id"]), str(row["text"])))
    else:
        for row in json.loads(path.read_text(encoding="utf-8")):
            docs.append((str(row["context_id"]), str(row["context_text"])))
    return [
        Passage(c, "zh_cmrc", "zh", doc, tune_split(doc))
        for doc, text in dict(docs).items()
        for c in chunks(text)
    ]


def runbooks(root: Path | None = None) -> list[Passage]:
    """Runbook chunks: odd operator folders held out, even folders and the sample corpus for training."""
    root = root or SHARED / "runbooks-openshift"
    out: list[Passage] = []
    if root.is_dir():
        folders = sorted(p for p in root.iterdir() if p.is_dir())
        for i, folder in enumerate(folders):
            for path in sorted(folder.rglob("*.md")):
                doc = str(path.relative_to(root))
                text = path.read_text(encoding="utf-8", errors="replace")
                out += [Passage(c, "en_runbooks", "en", doc, i % 2 == 0) for c in chunks(text)]
    sample = Path(str(resources.files("deploy").joinpath("sample_corpus")))
    for path in sorted(sample.rglob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        out += [Passage(c, "en_runbooks", "en", f"sample/{path.name}", True) for c in chunks(text)]
    return out


_ACCENT = {":": "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", ",": "\u0327", "~": "\u0303"}
_TROFF_CHAR = re.compile(r"\\\(([:'`^,~])([A-Za-z])")
_TROFF_ESC = re.compile(r"\\f(\[[^\]]*\]|\(..|.)|\\\*(\[[^\]]*\]|\(..|.)|\\\(..|\\[|&^/,~:%]")


def troff_text(src: str) -> str:
    """Readable text of a man page's troff source (macros dropped, their arguments kept)."""
    lines = []
    in_table = False
    for line in src.splitlines():
        if line.startswith((".TS", "'\\\"")):
            in_table = line.startswith(".TS")
            continue
        if line.startswith(".TE"):
            in_table = False
            continue
        if in_table or line.startswith(('.\\"', "'\\\"", ".\\}")):
            continue
        if line.startswith((".", "'")):
            parts = line.split(None, 1)
            macro = parts[0][1:]
            if macro in {"SH", "SS"}:
                lines.append("\n")
                continue  # headings: not prose
            if macro in {"PP", "P", "LP", "TP", "IP", "br", "sp", "RS", "RE", "nf", "fi"}:
                lines.append("\n" if macro in {"PP", "P", "LP", "TP", "IP", "sp"} else "")
                if macro == "IP" and len(parts) > 1:
                    lines.append(parts[1].split('"')[1] if parts[1].startswith('"') else parts[1].split()[0])
                continue
            if macro in {"B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "SB", "UR", "MT", "TQ"}:
                lines.append(parts[1].replace('"', "") if len(parts) > 1 else "")
            continue
        lines.append(line)
    text = "\n".join(lines).replace("\\(ss", "ß")
    text = unicodedata.normalize("NFC", _TROFF_CHAR.sub(lambda m: m.group(2) + _ACCENT[m.group(1)], text))
    text = _TROFF_ESC.sub("", text).replace("\\-", "-").replace("\\ ", " ").replace("\\e", "\\")
    text = re.sub(r"\n{2,}", "\n\n", text)
    # paragraphs: join the source lines of one paragraph (CJK text carries no spaces between lines)
    paras = [re.sub(r"\s*\n\s*", " ", p).strip() for p in text.split("\n\n")]
    return "\n".join(p for p in paras if len(p) >= 40)


def manpages(root: Path = Path("/usr/share/man"), langs: Sequence[str] = MAN_LANGS) -> list[Passage]:
    """Translated manual pages of this machine, split by page name (hash) across all languages."""
    out: list[Passage] = []
    for lang in langs:
        base = root / lang
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.gz")):
            if path.is_symlink():
                continue
            try:
                src = gzip.decompress(path.read_bytes()).decode("utf-8")
            except (OSError, UnicodeDecodeError, EOFError):
                continue
            if src.lstrip().startswith(".so "):
                continue  # a link to another page
            name = path.name.removesuffix(".gz")
            short = lang.split("_")[0]
            out += [
                Passage(c, f"man_{lang}", short, f"{lang}/{name}", tune_split(name))
                for c in chunks(troff_text(src))
            ]
    return out


def passages(
    *, cmrc_path: Path | None = None, runbooks_root: Path | None = None, man_root: Path | None = None
) -> list[Passage]:
    """Every source's chunks, at most PER_SOURCE per (source, half), in a fixed order."""
    rows = cmrc(cmrc_path) + runbooks(runbooks_root) + manpages(man_root or Path("/usr/share/man"))
    by: dict[tuple[str, bool], list[Passage]] = defaultdict(list)
    for p in rows:
        by[(p.source, p.train)].append(p)
    out: list[Passage] = []
    for key in sorted(by, key=lambda k: (k[0], not k[1])):
        group = by[key]
        if len(group) > PER_SOURCE:
            group = random.Random(f"{key[0]}/{key[1]}").sample(group, PER_SOURCE)
        out += group
    return out


def training(rows: Iterable[Passage]) -> list[Passage]:
    return [p for p in rows if p.train]


def held_out(rows: Iterable[Passage]) -> list[Passage]:
    return [p for p in rows if not p.train]


THRESHOLDS = (0.7, 0.8, 0.9)


def fpr_table(rows: Sequence[Passage], scores: Sequence[float]) -> dict[str, Any]:
    """Per source (and all of one language together): share of chunks at or above each threshold."""
    from eval.safety.heldout import rate

    by: dict[str, list[float]] = defaultdict(list)
    for p, s in zip(rows, scores, strict=True):
        by[p.source].append(s)
    return {
        src: {f"{t:.1f}": rate([s >= t for s in ss]) for t in THRESHOLDS} for src, ss in sorted(by.items())
    }


def main(argv: list[str] | None = None) -> int:
    from service.safety.pipeline import GuardPipeline
    from service.safety.policy import SafetySettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", choices=("held_out", "training"), default="held_out")
    ap.add_argument("--head", choices=("general", "prose"), default="general", help="safety.semantic_head")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rows = passages()
    rows = held_out(rows) if args.half == "held_out" else training(rows)
    guard = GuardPipeline(SafetySettings(semantic=True, semantic_head=args.head))
    assert guard.semantic is not None
    sem = [guard.semantic.score(p.text) for p in rows]
    full = [max((f.score for f in guard.injection(p.text)), default=0.0) for p in rows]
    rep = {"half": args.half, "semantic": fpr_table(rows, sem), "gateway": fpr_table(rows, full)}
    for mode in ("semantic", "gateway"):
        print(f"{mode}: FPR at 0.7 / 0.8 / 0.9 ({args.half} half)")
        for src, r in rep[mode].items():
            cells = " ".join(f"{r[t]['rate']:.3f}" for t in ("0.7", "0.8", "0.9"))
            print(f"  {src:12s} n={r['0.7']['n']:4d} {cells}")
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
