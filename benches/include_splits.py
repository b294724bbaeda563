"""Split the INCLUDE development clips into the folders the stream benchmarks use.

Creates (as symbolic links, nothing is copied) under OUT:

* ``train/``, ``val/``, ``test/``: the 14 words recorded in four sessions; per word the
  two first sessions train, the third validates, the fourth (signers never seen) tests;
* ``unknown-val/`` (Mean, Nice) and ``unknown/`` (cheap, female, flat, poor, thick): words
  kept out of training, the out-of-vocabulary signs of validation and test.

Data: INCLUDE (Sridhar, Ganesan, Kumar and Khapra, ACM Multimedia 2020, AI4Bharat), the
landmark clips of ``../shared/data/include-dev``; do not copy them into the repository.

Usage:
    python benches/include_splits.py [--data ../shared/data/include-dev] --out DIR
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

UNKNOWN_TEST = ("cheap", "female", "flat", "poor", "thick")
UNKNOWN_VAL = ("Mean", "Nice")


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cands = [p / "shared" / "data" / "include-dev" for p in (root.parent, root.parents[1])]
    default = next((c for c in cands if (c / "manifest.csv").is_file()), cands[0])
    ap.add_argument("--data", default=str(default))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    data, out = Path(args.data).resolve(), Path(args.out)
    with open(data / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    sessions: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        sessions[r["sign"]].add(int(r["session"]))
    for r in rows:
        sign, ses = r["sign"], sorted(sessions[r["sign"]])
        k = int(r["session"])
        if sign in UNKNOWN_TEST:
            split = "unknown"
        elif sign in UNKNOWN_VAL:
            split = "unknown-val"
        else:
            split = "test" if k == ses[-1] else "val" if k == ses[-2] else "train"
        link = out / split / sign / Path(r["path"]).name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(data / r["path"])
    for d in sorted(out.iterdir()):
        print(d.name, sum(1 for _ in d.glob("*/*.npy")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
