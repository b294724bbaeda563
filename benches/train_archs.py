"""Every architecture on real clips with the data-aware defaults: top-1, size, time, latency.

For each architecture (only ``arch`` overridden on top of
:func:`signrt.train.auto.auto_config`; ``--epochs`` shortens every run alike when CPU time
is short) this trains through :func:`signrt.train.train` on the held-out-session split
(every sign's last session held out) and the random split of include-dev (INCLUDE words,
Sridhar et al., ACM MM 2020), scores the held-out clips with the *last* epoch's weights,
counts the parameters, and times a batch-1 CPU ``predict`` of the session-split model
exported to ONNX (``signrt export`` + ``signrt bench inference --batch 1 --threads 1``).

Run: ``python benches/train_archs.py --data ../shared/data/include-dev --archs
cnn1d,cnn_transformer``. Rows are appended to ``benches/results/train_archs.jsonl``;
``--render`` writes ``train_archs.json`` and ``train_archs.md`` from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
ARCHS = ("cnn1d", "cnn_transformer", "st_transformer", "attention_bilstm", "signbert", "spoter")
log = logging.getLogger("train_archs")
HEADER = """# Every architecture on real clips (`benches/train_archs.py`)

include-dev: 251 clips of 21 Indian Sign Language words from **INCLUDE** (Sridhar, Ganesan,
Kumar and Khapra, ACM Multimedia 2020, AI4Bharat), MediaPipe Pose + Hands (T, 75, 3)
`.npy`, read unconverted; not in this repository, no model trained on it ships. Every row
uses the data-aware defaults (`hands_pose`, max_len 64 with `resample`, batch 32, AdamW
2e-3 warm-up + cosine, weight decay 0.05, light augmentation, class weights) with only
`arch` overridden, and, where the *epochs* column says so, the epoch count shortened alike
for every architecture (CPU time was scarce). *Session split*: every sign's last recording
session held out (68 clips); *random split*: 20 % of every sign's clips (55). Single runs,
seed 0, last epoch's weights (1 clip = 1.5 / 1.8 points). Parameters: trainable, from the
checkpoint. Latency: the session-split model exported to ONNX, `signrt bench inference
--batch 1 --device cpu --threads 1`, the *predict (landmarks -> label)* row. Shared 2-core
AMD EPYC VM **with AVX-512** (not an AVX2-only CPU), under load from other jobs (load
average 2-7): p99 figures in particular are inflated by the load; training used 1 torch
thread at `nice`.
"""


def _isa() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"


def _cli(*args: str) -> str:
    cmd = [sys.executable, "-c", "import sys; from signrt.cli import main; sys.exit(main())"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"signrt {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def _params(run_dir: Path) -> int:
    """Trainable parameter count of ``run_dir/last.pt`` (BatchNorm statistics excluded)."""
    from signrt.train.checkpoint import load_checkpoint

    sd = load_checkpoint(run_dir / "last.pt").state_dict
    return int(sum(v.numel() for k, v in sd.items()
                   if v.is_floating_point() and "running_" not in k))  # fmt: skip


def _latency(run_dir: Path, work: Path) -> dict[str, float]:
    """Batch-1 CPU ``predict`` (landmarks -> label) median / p99 of the exported model."""
    onnx_path, bench_json = work / "model.onnx", work / "bench.json"
    _cli("export", str(run_dir / "last.pt"), "-o", str(onnx_path))
    _cli("bench", "inference", str(onnx_path), "--batch", "1", "--device", "cpu",
         "--threads", "1", "--json", str(bench_json))  # fmt: skip
    rows = json.loads(bench_json.read_text())["rows"]
    row = next(r for r in rows if r["case"].startswith("predict"))
    return {"median_ms": float(row["median_ms"]), "p99_ms": float(row["p99_ms"])}


def run(data: Any, fold: Any, arch: str, epochs: int | None, work: Path) -> dict[str, Any]:
    """Train ``arch`` on ``fold.train`` with the defaults; score ``fold.test``."""
    from signrt.train.config import TrainConfig
    from signrt.train.cv import fold_sets
    from signrt.train.trainer import train

    tr, te = fold_sets(data, fold)
    extra: dict[str, Any] = {} if epochs is None else {"epochs": epochs}
    cfg = TrainConfig.from_mapping({}, data=data.source, out=str(work / "run"), num_workers=0,
                                   plots=False, patience=0, seed=0, arch=arch,
                                   **extra)  # fmt: skip
    t0 = time.perf_counter()
    result = train(cfg, train_set=tr, val_set=te)
    wall = time.perf_counter() - t0
    last = result.history[-1]
    return {"top1": float(last["val_top1"]), "test_clips": len(te), "train_s": wall,
            "epochs": len(result.history),
            "clips_per_s": float(np.mean([h["clips_per_s"] for h in result.history]))}  # fmt: skip


def render() -> None:
    """Write ``train_archs.json`` and the Markdown table from ``train_archs.jsonl``."""
    rows = [json.loads(x) for x in (RESULTS / "train_archs.jsonl").read_text().splitlines()]
    (RESULTS / "train_archs.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [HEADER, "| arch | params | epochs | session top-1 | random top-1 | train s (session / "
             "random) | batch-1 predict median / p99 ms | ISA |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        s, rnd = r.get("session"), r.get("random")
        lat = r.get("latency")
        lat_s = "–" if lat is None else f"{lat['median_ms']:.2f} / {lat['p99_ms']:.2f}"

        def acc(x: dict[str, Any] | None) -> str:
            return "–" if x is None else f"{x['top1'] * 100:.1f} %"

        lines.append(
            f"| {r['arch']} | {r['params'] / 1e6:.2f}M | {r['epochs']} | {acc(s)} | "
            f"{acc(rnd)} | {s['train_s'] if s else float('nan'):.0f} / "
            f"{rnd['train_s'] if rnd else float('nan'):.0f} | "
            f"{lat_s} | "
            f"{r['isa']} |")  # fmt: skip
    (RESULTS / "train_archs.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Train the requested architectures on the requested splits."""
    from signrt.train.data import ClipSet, open_dataset
    from signrt.train.splits import random_split, session_split

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/include-dev")
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--splits", default="session,random")
    ap.add_argument("--epochs", type=int, help="override the defaults' epoch count")
    ap.add_argument("--render", action="store_true", help="only rewrite .json/.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.render:
        render()
        return
    import torch

    torch.set_num_threads(1)  # the machine is shared: one thread is faster under load
    lazy = open_dataset(args.data)
    data = ClipSet([lazy.clips[i] for i in range(len(lazy))], lazy.labels, lazy.label_names,
                   lazy.groups, source=lazy.source)  # in memory  # fmt: skip
    folds = {"session": session_split(data.labels, data.groups),
             "random": random_split(data.labels, 0.2, seed=0)}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    for arch in args.archs.split(","):
        row: dict[str, Any] = {"arch": arch, "isa": _isa(), "threads": 1,
                               "epochs_override": args.epochs,
                               "data": "INCLUDE (Sridhar et al., ACM MM 2020) include-dev",
                               }  # fmt: skip
        for split in args.splits.split(","):
            work = Path(tempfile.mkdtemp(prefix=f"signrt-arch-{arch}-"))
            try:
                row[split] = run(data, folds[split], arch, args.epochs, work)
                row["epochs"] = row[split]["epochs"]
                if "params" not in row:
                    row["params"] = _params(work / "run")
                    row["latency"] = _latency(work / "run", work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            log.info("%s %s: %s", arch, split, row[split])
        with open(RESULTS / "train_archs.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        render()


if __name__ == "__main__":
    main()
