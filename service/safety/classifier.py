"""A learned injection classifier: TF-IDF over character n-grams and a logistic regression.

Trained by `eval/safety/train_injection.py` on data the project generates itself; the weights ship
as a small JSON file (vocabulary, idf, coefficient per n-gram) read here in pure Python, so the
gateway needs no scikit-learn and no pickle at run time.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from service.safety.normalize import normalize

MODEL_FILE = "injection_model.json"
NGRAM_RANGE = (2, 4)


def analyze(text: str) -> list[str]:
    """Features shared by training and inference: char n-grams inside padded words, plus words."""
    norm = re.sub(r"\s+", " ", normalize(text)).strip()
    feats: list[str] = []
    lo, hi = NGRAM_RANGE
    for word in norm.split(" "):
        if not word:
            continue
        feats.append("w:" + word)
        padded = f" {word} "
        for n in range(lo, hi + 1):
            feats.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return feats


@dataclass
class LinearTextModel:
    vocabulary: dict[str, int]
    idf: list[float]
    coef: list[float]
    intercept: float
    meta: dict[str, object]

    @classmethod
    def load(cls, path: Path | None = None) -> LinearTextModel | None:
        """The packaged model (or `path`); None when it has not been trained yet."""
        try:
            if path is None:
                raw = (
                    resources.files("service.safety").joinpath("data", MODEL_FILE).read_text(encoding="utf-8")
                )
            else:
                raw = path.read_text(encoding="utf-8")
        except (FileNotFoundError, OSError):
            return None
        data = json.loads(raw)
        vocab = {term: i for i, term in enumerate(data["terms"])}
        return cls(vocab, data["idf"], data["coef"], float(data["intercept"]), data.get("meta", {}))

    def score(self, text: str) -> float:
        """Probability that `text` is an injection or jailbreak attempt."""
        counts = Counter(i for f in analyze(text) if (i := self.vocabulary.get(f)) is not None)
        if not counts:
            return 1.0 / (1.0 + math.exp(-self.intercept))
        weights = {i: (1.0 + math.log(n)) * self.idf[i] for i, n in counts.items()}  # sublinear tf
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        z = self.intercept + sum(w * self.coef[i] for i, w in weights.items()) / norm
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
