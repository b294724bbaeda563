"""Runtime commands: ``signrt info`` and ``signrt predict``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import SignrtError

__all__ = ["register"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_DEVICES = ("auto", "cpu", "cuda", "tensorrt", "trt")  # = engines.DEVICES, without the import

def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``info`` and ``predict`` to the ``signrt`` command."""
    p = sub.add_parser(
        "info",
        help="describe a model file: spec, labels, inputs, precision, size, devices",
        description="Validate a signrt model file and describe it, with the devices this "
        "machine can run it on.",
    )
    p.add_argument("model", metavar="MODEL", help="the .onnx model file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "predict",
        help="recognise the sign in landmark clips (.parquet, .npy, .pose)",
        description="Load a model and print the top-k signs of each clip.",
    )
    p.add_argument("model", metavar="MODEL", help="the .onnx model file")
    p.add_argument("clips", nargs="+", metavar="CLIP", help="landmark clips")
    p.add_argument("--device", default="auto", choices=_DEVICES,
                   help="inference backend (default auto)")
    p.add_argument("--top-k", type=int, default=5, help="signs per clip (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_predict)


# ------------------------------------------------------------------------------ info
def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _cmd_info(args: argparse.Namespace) -> int:
    from ..runtime.engines import available_devices
    from ..runtime.model import load_model_file

    mf = load_model_file(args.model)
    devices = available_devices()
    if args.json:
        doc = mf.summary()
        doc["devices"] = {d: ("available" if r is None else r) for d, r in devices.items()}
        print(json.dumps(doc, indent=2))
        return 0
    s = mf.spec
    norm = s.normalize.kind + (f" (reference {s.normalize.reference})"
                               if s.normalize.reference is not None else "")
    labels = ", ".join(mf.labels[:20]) + (f", ... ({len(mf.labels) - 20} more)"
                                          if len(mf.labels) > 20 else "")

    def dims(d: Sequence[Any]) -> str:
        return "(" + ", ".join("?" if x is None else str(x) for x in d) + ")"

    lines = [
        f"model         {mf.path}",
        f"architecture  {mf.architecture}",
        f"precision     {mf.precision}",
        f"size          {_human(mf.size_bytes)} ({mf.size_bytes} bytes)",
        f"sha256        {mf.sha256}",
        f"spec          {s.fingerprint}: {s.layout}, P={s.num_points} points x "
        f"{s.channels} channels = F {s.num_features}, L {s.max_len}, {s.fit}, "
        f"normalize {norm}, lags {list(s.motion_lags)}",
        f"labels        K={len(mf.labels)}: {labels}",
        "inputs        " + ", ".join(f"{k} {dims(v)}" for k, v in mf.inputs.items()),
        "outputs       " + ", ".join(f"{k} {dims(v)}" for k, v in mf.outputs.items()),
        f"window        L in {list(mf.buckets)} (the real frames rounded up to a bucket)"
        if len(mf.buckets) > 1 else f"window        L = {s.max_len} always (no buckets)",
    ]
    extra = {k: v for k, v in mf.info.items() if k not in ("architecture", "precision")}
    if extra:
        lines.append(f"info          {json.dumps(extra, sort_keys=True)[:400]}")
    lines.append("devices")
    for d, reason in devices.items():
        lines.append(f"  {d:9s} {'available' if reason is None else 'unavailable: ' + reason}")
    print("\n".join(lines))
    return 0


# --------------------------------------------------------------------------- predict
def _cmd_predict(args: argparse.Namespace) -> int:
    from ..io import read_clip
    from ..recognizer import load

    if args.top_k < 1:
        raise SignrtError("--top-k must be >= 1")
    rec = load(args.model, device=args.device, top_k=args.top_k)
    results: list[dict[str, Any]] = []
    status = 0
    for path in args.clips:
        try:
            clip = read_clip(path)
        except (OSError, ImportError, SignrtError) as exc:
            where = "" if str(path) in str(exc) else f"{path}: "
            print(f"signrt predict: {where}{exc}", file=sys.stderr)
            status = 2
            continue
        pred = rec.predict(clip)
        doc = {"clip": str(path), "frames": int(clip.shape[0]), **pred.to_dict()}
        results.append(doc)
        if not args.json:
            if pred.no_signer:
                print(f"{path}: no signer ({clip.shape[0]} frames)")
                continue
            if pred.unknown:
                print(f"{path}: unknown (the model's background class, {pred.score:.3f})")
                continue
            alts = ", ".join(f"{lab} {p:.3f}" for lab, p in pred.topk[1:])
            print(
                f"{path}: {pred.label} {pred.score:.3f}"
                + (f"  [{alts}]" if alts else "")
                + f"  ({pred.latency.preprocess_ms:.2f} + {pred.latency.inference_ms:.2f} ms)"
            )
    if args.json:
        print(json.dumps({"model": str(rec.model.path), "device": rec.engine.device,
                          "predictions": results}, indent=2))
    return status


