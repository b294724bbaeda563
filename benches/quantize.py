"""Export + quantisation benchmark: size, accuracy delta and CPU latency ratios.

Quantises one fp32 model file three ways (static INT8 Q/DQ, dynamic INT8, FP16), evaluates
all four on the same held-out synthetic signers, and times them side by side on this CPU
with ONNX Runtime (interleaved rounds, so that every variant sees the same machine load):
median latency of one clip (batch 1) and of a batch of 32.

Writes ``benches/results/quantize.json`` and ``quantize.md``. Target (issue 4): INT8 at least
1.5x faster than fp32 with at most 1 point top-1 drop.

    python benches/quantize.py                        # the bundled demo model
    python benches/quantize.py --checkpoint runs/x/best.pt --val "synthetic:..."
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "python" / "signrt" / "_models" / "demo" / "demo.onnx"
# The demo model's held-out validation signers and a calibration sample of its training
# signers (models/demo/train.toml).
DEFAULT_VAL = "synthetic:classes=20,signers=4,clips_per_class=3,seed=0,signer_offset=10"
DEFAULT_CALIB = "synthetic:classes=20,signers=10,clips_per_class=2,seed=0"
TARGET_SPEEDUP = 1.5
TARGET_DROP = 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="fp32 model file")
    ap.add_argument("--checkpoint", type=Path, help="export this checkpoint instead of --model")
    ap.add_argument("--val", default=DEFAULT_VAL, help="validation data")
    ap.add_argument("--calib", default=DEFAULT_CALIB, help="calibration data (static INT8)")
    ap.add_argument("--calib-clips", type=int, default=256)
    ap.add_argument("--threads", default="1", help="comma-separated ORT thread counts")
    ap.add_argument("--time", type=float, default=4.0, help="timing seconds per model")
    ap.add_argument("--out", type=Path, default=ROOT / "benches" / "results")
    args = ap.parse_args(argv)

    import torch

    from signrt.bench import write_report
    from signrt.runtime.quantize import (
        calibration_batches,
        compare_models,
        convert_fp16,
        quantize_int8,
        quantize_int8_dynamic,
    )
    from signrt.train.data import open_dataset
    from signrt.train.export import export_checkpoint

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="signrt-bench-q-") as tmp:
        work = Path(tmp)
        notes: list[str] = []
        if args.checkpoint is not None:
            rep = export_checkpoint(args.checkpoint, work / "fp32.onnx")
            fp32 = rep.path
            notes.append(f"exported {args.checkpoint}: {rep.summary()}")
        else:
            fp32 = args.model
            if not fp32.is_file():
                print(f"no model at {fp32}; pass --model or --checkpoint", file=sys.stderr)
                return 2
        from signrt.runtime.model import load_model_file

        mf = load_model_file(fp32)
        val = open_dataset(args.val)
        calib = calibration_batches(open_dataset(args.calib), mf.spec, max_clips=args.calib_clips)
        variants = {
            "int8 (static QDQ)": quantize_int8(fp32, work / "int8.onnx", calib),
            "int8-dynamic": quantize_int8_dynamic(fp32, work / "int8-dynamic.onnx"),
            "fp16": convert_fp16(fp32, work / "fp16.onnx"),
        }
        rows = []
        extra: dict[str, object] = {
            "model": os.fspath(fp32.relative_to(ROOT) if fp32.is_relative_to(ROOT) else fp32),
            "architecture": mf.architecture,
            "val_data": args.val,
            "val_clips": len(val),
            "calib_data": args.calib,
            "calib_clips": sum(b[0].shape[0] for b in calib),
            "targets": {"int8_speedup_min": TARGET_SPEEDUP, "int8_drop_max_points": TARGET_DROP},
        }
        for threads in [int(t) for t in args.threads.split(",")]:
            res = compare_models(
                fp32, list(variants.values()), val, threads=threads, min_time=args.time
            )
            base = res[0]
            for name, r in zip(["fp32", *variants], res, strict=True):
                rows.append({
                    "variant": name,
                    "precision": r["precision"],
                    "threads": threads,
                    "size_MB": r["size_bytes"] / 1e6,
                    "size_ratio": r["size_bytes"] / base["size_bytes"],
                    "top1_%": 100 * r["top1"],
                    "delta_points": 100 * (r["top1"] - base["top1"]),
                    "batch1_ms": r["latency_ms"],
                    "speedup_batch1": base["latency_ms"] / r["latency_ms"],
                    "batch32_ms": r["batch_ms"],
                    "clips_per_s_batch32": r["clips_per_s"],
                    "speedup_batch32": base["batch_ms"] / r["batch_ms"],
                })
        for row in rows:
            if row["variant"].startswith("int8 ("):
                ok_acc = -row["delta_points"] <= TARGET_DROP
                notes.append(
                    f"int8 static, {row['threads']} thread(s): {row['speedup_batch1']:.2f}x "
                    f"(batch 1) and {row['speedup_batch32']:.2f}x (batch 32) vs fp32, "
                    f"{row['delta_points']:+.2f} points top-1: target >= {TARGET_SPEEDUP}x "
                    f"{'met' if row['speedup_batch32'] >= TARGET_SPEEDUP else 'NOT met'} at "
                    f"batch 32, {'met' if row['speedup_batch1'] >= TARGET_SPEEDUP else 'NOT met'}"
                    f" at batch 1; accuracy {'met' if ok_acc else 'NOT met'}"
                )
        notes.append(
            f"model {extra['model']} ({mf.architecture}); accuracy on {len(val)} clips of "
            f"held-out synthetic signers ({args.val}); latency = median of interleaved rounds, "
            "ONNX Runtime CPUExecutionProvider; fp16 is meant for GPUs (on a CPU ONNX Runtime "
            "runs most of it through float32 fallbacks)"
        )
        paths = write_report(
            "quantize", rows, args.out, title="Export + quantisation (CPU)", notes=notes,
            extra=extra,
        )  # fmt: skip
    print(paths[1].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
