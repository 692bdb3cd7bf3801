"""Split a queries JSONL file in two by a hash of each query's first relevant document id.

    .venv/bin/python -m eval.datasets.split FILE  ->  FILE_tune.jsonl, FILE_test.jsonl beside it

Queries about the same document land in the same half, so tuning never sees the documents it is
reported on. The rule is the one `eval.datasets.runbooks` uses for its generated set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eval.data import write_jsonl
from eval.datasets.runbooks import tune_split


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    src = Path(args[0])
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    tune = [r for r in rows if r.get("relevant") and tune_split(str(r["relevant"][0]))]
    test = [r for r in rows if not (r.get("relevant") and tune_split(str(r["relevant"][0])))]
    for suffix, part in (("tune", tune), ("test", test)):
        out = src.with_name(f"{src.stem}_{suffix}.jsonl")
        print(f"{out}: {write_jsonl(out, part)} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
