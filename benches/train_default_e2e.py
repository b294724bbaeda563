"""The default recipe end to end on real clips, through the command line a user runs.

On the held-out-session split of include-dev (INCLUDE words, Sridhar et al., ACM MM 2020;
every sign's last recording session held out): ``signrt train`` with nothing but
``--data``/``--val-data``/``--out``, ``signrt export --verify-data``, ``signrt quantize
--int8 --calib``, ``signrt eval`` of fp32 and int8, and ``signrt bench inference`` at batch
1. The manifests handed to the commands are CSV files listing the clips where they are
(the (T, 75, 3) Pose + Hands ``.npy`` files, unconverted). The last epoch's weights are
exported (no checkpoint is picked on the held-out clips).

Run: ``python benches/train_default_e2e.py --data ../shared/data/include-dev``; writes
``benches/results/train_default.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _run(*args: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-c", "import sys; from signrt.cli import main; sys.exit(main())"]
    proc = subprocess.run([*cmd, *args], capture_output=True,
                          text=True, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"signrt {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr, wall


def main() -> None:
    """Train, export, quantise, evaluate and time the default model."""
    from signrt.train.data import open_dataset
    from signrt.train.splits import session_split

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/include-dev")
    ap.add_argument("--work", help="keep the run here (default: a temporary folder)")
    ap.add_argument("--reuse-run", action="store_true",
                    help="reuse WORK/run from an earlier call instead of training again")
    args = ap.parse_args()
    data = open_dataset(args.data)
    fold = session_split(data.labels, data.groups)
    paths = data.clips.paths  # type: ignore[attr-defined]
    work = Path(args.work or tempfile.mkdtemp(prefix="signrt-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    for name, idx in (("train", fold.train), ("test", fold.test)):
        with open(work / f"{name}-clips.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "sign", "session"])
            for i in idx:
                w.writerow([os.fspath(Path(paths[i]).resolve()),
                            data.label_names[data.labels[i]], data.groups[i]])  # fmt: skip
    tr, te, run = str(work / "train-clips.csv"), str(work / "test-clips.csv"), str(work / "run")
    if args.reuse_run and (work / "run" / "last.pt").is_file():
        log, train_s = "(reused)", float("nan")
    else:
        log, train_s = _run("train", "--data", tr, "--val-data", te, "--out", run)
    choices = json.loads((work / "run" / "choices.json").read_text())
    fp32, int8 = str(work / "model.onnx"), str(work / "model.int8.onnx")
    _run("export", f"{run}/last.pt", "-o", fp32, "--verify-data", te)
    # the gate is reported, not enforced here: the drop is what this bench records
    qlog, _ = _run("quantize", fp32, "--int8", "--calib", tr, "--val-data", te, "-o", int8,
                   "--max-drop", "100")
    rep: dict[str, Any] = {}
    for tag, model in (("fp32", fp32), ("int8", int8)):
        out, _ = _run("eval", model, "--data", te, "--json")
        rep[tag] = json.loads(out[out.index("{") :])
    bench = {}
    for tag, model in (("fp32", fp32), ("int8", int8)):
        bench_json = work / f"bench-{tag}.json"
        _run("bench", "inference", model, "--batch", "1", "--device", "cpu", "--threads", "1",
             "--json", str(bench_json))  # fmt: skip
        bench[tag] = json.loads(bench_json.read_text())
    doc = {
        "data": "include-dev (INCLUDE, Sridhar et al., ACM MM 2020), split " + fold.name,
        "train_clips": len(fold.train), "test_clips": len(fold.test),
        "train_wall_s": train_s, "choices": choices,
        "fp32_top1": rep["fp32"].get("top1"), "int8_top1": rep["int8"].get("top1"),
        "bench": bench, "quantize_log": qlog[-2000:], "train_log_tail": log[-3000:],
        "isa": "avx512" if "avx512f" in Path("/proc/cpuinfo").read_text() else "no avx512",
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_default.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(json.dumps({k: doc[k] for k in ("train_wall_s", "fp32_top1", "int8_top1")}))


if __name__ == "__main__":
    main()
