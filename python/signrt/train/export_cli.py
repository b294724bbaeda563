"""The ``signrt export`` and ``signrt quantize`` commands.

Importing this module is cheap (no torch, no onnx): the work is imported when a command
runs, so ``signrt --help`` stays fast on machines without the ``train`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``export`` and ``quantize``."""
    p = sub.add_parser(
        "export",
        help="export a training checkpoint to a verified ONNX model file",
        description=(
            "Export RUN_DIR/best.pt to an ONNX model file (inputs features (B, L, F) and mask "
            "(B, L), output logits (B, K); batch dynamic, L dynamic up to max_len where "
            "padding is proven inert (see --buckets), else fixed) with the signrt metadata "
            "(FeatureSpec, labels, model info). The graph is simplified with onnxslim and "
            "verified: ONNX Runtime and PyTorch must agree on real batches (synthetic-signer "
            "clips, or --verify-data) at both ends of --batch-range."
        ),
    )
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint written by `signrt train`")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="output file")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default 18)")
    p.add_argument(
        "--batch-range",
        default="1:64",
        metavar="MIN:MAX",
        help="batch sizes the graph is declared and verified for (default 1:64)",
    )
    p.add_argument(
        "--exporter",
        choices=("auto", "dynamo", "torchscript"),
        default="auto",
        help="torch.onnx exporter: dynamo (torch.export), torchscript (legacy), or auto "
        "(dynamo, falling back to torchscript); default auto",
    )
    p.add_argument("--verify-data", metavar="DIR", help="dataset whose clips verify the export")
    p.add_argument(
        "--tol", type=float, default=1e-4, help="parity tolerance (absolute and relative)"
    )
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    p.add_argument(
        "--buckets",
        default="auto",
        metavar="auto|none|N,N,...",
        help="window lengths the runtime may run the model at (dynamic time axis, checked "
        "at export to give max_len's logits): auto (16, 32, 64, ... up to max_len), none "
        "(fixed L), or a list; default auto",
    )
    p.add_argument(
        "--calib-data",
        default="auto",
        metavar="DIR|auto|none",
        help="held-out labelled clips the calibration temperature is fitted on (stored in "
        "the model; the runtime's probabilities and stream thresholds are calibrated): a "
        "dataset, auto (the run's --val-data when it exists; default) or none",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_export)

    q = sub.add_parser(
        "quantize",
        help="quantise a model file (INT8 static/dynamic, FP16) and gate on accuracy",
        description=(
            "Write a quantised copy of an fp32 model file, then evaluate both on the "
            "validation set and time both on this CPU. Prints the top-1 delta and the "
            "latency ratio; exits with status 1 when the top-1 drop exceeds --max-drop "
            "points."
        ),
    )
    q.add_argument("model", metavar="MODEL.onnx", help="fp32 model file from `signrt export`")
    mode = q.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--int8",
        dest="mode",
        action="store_const",
        const="int8",
        help="static INT8 Q/DQ (symmetric, per-channel weights); needs --calib",
    )
    mode.add_argument(
        "--int8-dynamic",
        dest="mode",
        action="store_const",
        const="int8-dynamic",
        help="dynamic INT8 (weights int8, activations at run time; CPU)",
    )
    mode.add_argument(
        "--fp16", dest="mode", action="store_const", const="fp16", help="FP16 weights and compute"
    )
    q.add_argument("--calib", metavar="DIR", help="calibration dataset (--int8)")
    q.add_argument(
        "--val-data", required=True, metavar="DIR", help="validation dataset for the accuracy gate"
    )
    q.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        help="largest allowed top-1 drop in points (default 1.0)",
    )
    q.add_argument("-o", "--output", metavar="OUT.onnx", help="default MODEL.<mode>.onnx")
    q.add_argument("--calib-clips", type=int, default=256, help="calibration clips (default 256)")
    q.add_argument(
        "--method",
        choices=("minmax", "percentile", "entropy"),
        default="minmax",
        help="calibration method (default minmax)",
    )
    q.add_argument("--threads", type=int, default=1, help="CPU threads for the timing")
    q.add_argument(
        "--timing", type=float, default=1.0, metavar="SECONDS", help="timing per model (1.0)"
    )
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=_cmd_quantize)


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint, parse_batch_range, parse_buckets

    report = export_checkpoint(
        args.checkpoint,
        args.output,
        opset=args.opset,
        exporter=args.exporter,
        batch_range=parse_batch_range(args.batch_range),
        verify_data=args.verify_data,
        atol=args.tol,
        rtol=args.tol,
        simplify=not args.no_simplify,
        length_buckets=parse_buckets(args.buckets),
        calib_data=None if args.calib_data == "none" else args.calib_data,
    )
    if args.json:
        doc = report.to_dict()
        doc.pop("info", None)
        print(json.dumps(doc, indent=2))
    else:
        print(report.summary())
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from ..errors import ModelError
    from ..runtime.quantize import quantize
    from .data import open_dataset

    if args.mode == "int8" and not args.calib:
        raise ModelError("--int8 needs calibration data: pass --calib DIR")
    result = quantize(
        args.model,
        args.mode,
        out=args.output,
        calib=open_dataset(args.calib) if args.calib else None,
        val=open_dataset(args.val_data) if args.val_data else None,
        max_drop=args.max_drop,
        calib_clips=args.calib_clips,
        method=args.method,
        threads=args.threads,
        timing_s=args.timing,
    )
    if args.json:
        doc = result.to_dict()
        doc.pop("details", None)
        print(json.dumps(doc, indent=2))
    else:
        print(result.summary())
    if not result.passed:
        print(
            f"signrt quantize: accuracy drop {result.drop_points:.2f} points exceeds "
            f"--max-drop {args.max_drop:.2f}",
            file=sys.stderr,
        )
        return 1
    return 0
