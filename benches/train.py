"""Training throughput (clips/s) with native vs NumPy-reference preprocessing in the data path.

The same model, data, augmentation and DataLoader are timed twice per round, once with the
collate function calling the native batch preprocessing (``signrt.preprocess_batch``) and
once with the NumPy reference (``preprocess_reference`` per clip); rounds alternate so that
drift of a shared machine affects both alike. Each measurement is full training steps:
read + augment (workers) -> collate/preprocess -> forward -> backward -> AdamW step.

Two model sizes are measured: a small model (where the data path dominates, as for the
edge-sized models this project trains) and the default ``cnn_transformer``.

Usage::

    python benches/train.py [--out benches/results] [--steps 30] [--workers 1]

Writes ``train.json`` and ``train.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from signrt import FeatureSpec, preprocess_reference
from signrt.bench import write_report
from signrt.train.augment import AugmentConfig, Augmenter
from signrt.train.data import batch_preprocess, open_dataset
from signrt.train.models import build_model
from signrt.train.trainer import ClipCollate, EpochIndexSampler, RawClipDataset, loader_options

MODELS: dict[str, dict[str, Any]] = {
    "small": {"dim": 64, "stages": 1, "convs_per_stage": 2, "heads": 2, "kernel_size": 9},
    "default": {},
}


def reference_batch(
    clips: list[npt.NDArray[np.float32]], spec: FeatureSpec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The NumPy reference, clip by clip: the baseline the native data path is compared with."""
    outs = [preprocess_reference(c, spec) for c in clips]
    return np.stack([f for f, _ in outs]), np.stack([m for _, m in outs])


class ReferenceCollate(ClipCollate):
    """ClipCollate with the NumPy reference instead of the native batch call (baseline)."""

    def __call__(self, items):  # type: ignore[no-untyped-def]
        feats, mask = reference_batch([c for c, _ in items], self.spec)
        labels = torch.tensor([y for _, y in items], dtype=torch.int64)
        return torch.from_numpy(feats), torch.from_numpy(mask), labels


COLLATE = {"native": ClipCollate, "reference": ReferenceCollate}
PREPROCESS = {"native": batch_preprocess, "reference": reference_batch}


def _steps(loader: Any, model: torch.nn.Module, opt: Any, steps: int) -> tuple[int, float]:
    """Run ``steps`` training steps; return (clips, seconds)."""
    clips = 0
    it = iter(loader)
    t0 = time.perf_counter()
    for _ in range(steps):
        try:
            feats, mask, y = next(it)
        except StopIteration:
            it = iter(loader)
            feats, mask, y = next(it)
        logits = model(feats, mask)  # (B, K)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        opt.step()
        clips += int(y.shape[0])
    return clips, time.perf_counter() - t0


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = FeatureSpec.preset(args.spec)
    data = open_dataset(args.data)
    aug = Augmenter(AugmentConfig())
    rows: list[dict[str, Any]] = []
    ratios: dict[str, float] = {}

    # the data path alone: preprocessing of one augmented batch
    rng = np.random.default_rng(0)
    batch = [aug(data.clips[i], rng) for i in range(args.batch_size)]
    pre: dict[str, float] = {}
    for backend in ("native", "reference"):
        reps = 20 if backend == "native" else 5
        t0 = time.perf_counter()
        for _ in range(reps):
            PREPROCESS[backend](batch, spec)
        pre[backend] = args.batch_size * reps / (time.perf_counter() - t0)
    rows.append({"measurement": "preprocess only (one batch)", "model": "-",
                 "native clips/s": pre["native"], "reference clips/s": pre["reference"],
                 "ratio": pre["native"] / pre["reference"]})  # fmt: skip
    ratios["preprocess_only"] = pre["native"] / pre["reference"]

    # the whole data path without a model: read + augment + preprocess, inline
    path_rate: dict[str, list[float]] = {"native": [], "reference": []}
    for _ in range(args.rounds):
        for backend in path_rate:
            loader = torch.utils.data.DataLoader(
                RawClipDataset(data, aug, seed=0), batch_size=args.batch_size,
                collate_fn=COLLATE[backend](spec),
            )  # fmt: skip
            t0 = time.perf_counter()
            n = sum(int(y.shape[0]) for _, _, y in loader)
            path_rate[backend].append(n / (time.perf_counter() - t0))
    nat, ref = float(np.median(path_rate["native"])), float(np.median(path_rate["reference"]))
    rows.append({"measurement": "data path only (read + augment + preprocess)", "model": "-",
                 "native clips/s": nat, "reference clips/s": ref, "ratio": nat / ref})  # fmt: skip
    ratios["data_path_only"] = nat / ref
    print(rows[-1])

    for name, opts in MODELS.items():
        model = build_model(args.arch, spec, data.num_classes, opts)
        params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        # the small model also runs with the data path inline (0 workers), where every
        # millisecond of preprocessing is on the critical path
        for workers in sorted({0, args.workers} if name == "small" else {args.workers}):
            results: dict[str, list[float]] = {"native": [], "reference": []}
            loaders = {}
            for backend in results:
                sampler = EpochIndexSampler(len(data), shuffle=True, seed=0)
                loaders[backend] = torch.utils.data.DataLoader(
                    RawClipDataset(data, aug, seed=0), batch_size=args.batch_size,
                    sampler=sampler, collate_fn=COLLATE[backend](spec),
                    **loader_options(workers),
                )  # fmt: skip
                _steps(loaders[backend], model, opt, 2)  # warm up (workers, allocator)
            for _ in range(args.rounds):
                for backend, loader in loaders.items():
                    clips, secs = _steps(loader, model, opt, args.steps)
                    results[backend].append(clips / secs)
            nat = float(np.median(results["native"]))
            ref = float(np.median(results["reference"]))
            ratios[f"{name}_workers{workers}"] = nat / ref
            rows.append({
                "measurement": f"training steps, {workers} DataLoader worker(s)",
                "model": f"{args.arch} {name} ({params / 1e6:.2f}M params)",
                "native clips/s": nat, "reference clips/s": ref, "ratio": nat / ref,
            })  # fmt: skip
            print(rows[-1])
            del loaders

    notes = [
        f"data: {data.source} ({len(data)} clips), spec {args.spec} "
        f"(L={spec.max_len}, F={spec.num_features}), batch {args.batch_size}, augmentation on "
        f"(default AugmentConfig), torch threads {args.threads}; DataLoader workers as "
        "given per row (0 = the data path runs inline in the training process).",
        f"medians of {args.rounds} alternating rounds of {args.steps} steps each.",
        "ratio = native / reference throughput; the preprocess-only row times "
        "batch_preprocess on one augmented batch in the main process.",
    ]
    extra = {"ratios": ratios, "config": vars(args)}
    write_report("train", rows, args.out, title="Training throughput: native vs reference "
                 "preprocessing in the data path", notes=notes, extra=extra)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--data", default="synthetic:classes=20,signers=4,clips_per_class=4,seed=0")
    p.add_argument("--spec", default="islr118")
    p.add_argument("--arch", default="cnn_transformer")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    run(p.parse_args())


if __name__ == "__main__":
    main()
