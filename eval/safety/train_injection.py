"""Train the injection/jailbreak classifier on the project's generated data; write its JSON weights.

    .venv/bin/python -m eval.safety.train_injection [--out service/safety/data/injection_model.json]

Features are `service.safety.classifier.analyze` (character 2-4-grams inside words, plus words,
after the same normalisation the rules use); TF-IDF with sublinear tf and a class-balanced
logistic regression (scikit-learn). Negatives: generated operations questions, tricky benign
prompts and paragraphs of the project's own sample corpus (deploy/sample_corpus). Deterministic:
the same data and seeds give the same file.
"""

from __future__ import annotations

import argparse
import json
import re
from importlib import resources
from pathlib import Path

from eval.safety.data import Example, dataset
from service.safety.classifier import MODEL_FILE, analyze

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "service" / "safety" / "data" / MODEL_FILE


def sample_corpus_paragraphs() -> list[Example]:
    root = Path(str(resources.files("deploy").joinpath("sample_corpus")))
    out = []
    for path in sorted(root.rglob("*.md")):
        for para in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            para = para.strip()
            if len(para) >= 30:
                lang = "zh" if re.search(r"[\u4e00-\u9fff]", para) else "en"
                out.append(Example(para[:600], 0, lang, "sample_corpus"))
    return out


def train(max_features: int = 6000, c: float = 4.0) -> dict[str, object]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    data = dataset("train") + sample_corpus_paragraphs()
    texts = [e.text for e in data]
    labels = [e.label for e in data]
    vec = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, min_df=2, max_features=max_features)
    x = vec.fit_transform(texts)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=0)
    clf.fit(x, labels)
    terms = vec.get_feature_names_out().tolist()
    return {
        "terms": terms,
        "idf": [round(float(v), 5) for v in vec.idf_],
        "coef": [round(float(v), 5) for v in clf.coef_[0]],
        "intercept": round(float(clf.intercept_[0]), 5),
        "meta": {
            "trained_on": len(texts),
            "positives": sum(labels),
            "features": len(terms),
            "c": c,
            "script": "eval/safety/train_injection.py",
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--max-features", type=int, default=6000)
    ap.add_argument("-C", type=float, default=4.0)
    args = ap.parse_args(argv)
    model = train(args.max_features, args.C)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    meta = model["meta"]
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB): {meta}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
