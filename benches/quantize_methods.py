"""fp32 vs static INT8 of the default model on real clips, per calibration method.

Trains the default ``cnn1d`` (data-aware defaults, nothing overridden) on the
held-out-session split and on the random split of include-dev (INCLUDE words, Sridhar et
al., ACM MM 2020), exports the last epoch's weights and quantises them with
:func:`signrt.runtime.quantize.quantize` (calibration on the training clips) once per
calibration method, scoring fp32 and INT8 on the same held-out clips in the same run.

Run: ``python benches/quantize_methods.py --data ../shared/data/include-dev``; writes
``benches/results/quantize_methods.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
log = logging.getLogger("quantize_methods")


def main() -> None:
    """Train per split, then quantise per calibration method."""
    import torch

    from signrt.runtime.quantize import quantize
    from signrt.train.config import TrainConfig
    from signrt.train.cv import fold_sets
    from signrt.train.data import ClipSet, open_dataset
    from signrt.train.export import export_checkpoint
    from signrt.train.splits import random_split, session_split
    from signrt.train.trainer import train

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/include-dev")
    ap.add_argument("--splits", default="session,random")
    ap.add_argument("--methods", default="minmax,percentile,entropy")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    lazy = open_dataset(args.data)
    data = ClipSet([lazy.clips[i] for i in range(len(lazy))], lazy.labels, lazy.label_names,
                   lazy.groups, source=lazy.source)  # in memory  # fmt: skip
    folds = {"session": session_split(data.labels, data.groups),
             "random": random_split(data.labels, 0.2, seed=0)}  # fmt: skip
    out: list[dict[str, Any]] = []
    for split in args.splits.split(","):
        tr, te = fold_sets(data, folds[split])
        work = Path(tempfile.mkdtemp(prefix=f"signrt-q-{split}-"))
        cfg = TrainConfig.from_mapping({}, data=data.source, out=str(work / "run"),
                                       num_workers=0, plots=False, seed=0)  # fmt: skip
        t0 = time.perf_counter()
        result = train(cfg, train_set=tr, val_set=te)
        train_s = time.perf_counter() - t0
        fp32 = work / "model.onnx"
        export_checkpoint(work / "run" / "last.pt", fp32)
        row: dict[str, Any] = {"split": split, "train_s": train_s,
                               "epochs": len(result.history),
                               "train_top1_last": float(result.history[-1]["val_top1"]),
                               "test_clips": len(te), "methods": {}}  # fmt: skip
        for method in args.methods.split(","):
            q = quantize(fp32, "int8", out=work / f"model.{method}.onnx", calib=tr, val=te,
                         max_drop=100.0, method=method)  # fmt: skip
            row["methods"][method] = {"fp32_top1": q.fp32_top1, "int8_top1": q.top1,
                                      "drop_points": q.drop_points,
                                      "agreement": q.top1_agreement,
                                      "int8_latency_ms": q.latency_ms,
                                      "fp32_latency_ms": q.fp32_latency_ms}  # fmt: skip
            log.info("%s %s: %s", split, method, row["methods"][method])
        out.append(row)
        (RESULTS / "quantize_methods.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
