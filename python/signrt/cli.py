"""The ``signrt`` command: one entry point, subcommands registered by the parts they belong to.

Each part of signrt that offers commands has a module with ``register(subparsers)``; this
module only assembles them, so ``signrt --help`` lists everything installed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Sequence

from . import __version__
from .errors import SignrtError

__all__ = ["bench_subparsers", "build_parser", "main"]

log = logging.getLogger("signrt")

#: Modules that contribute subcommands (each defines ``register(subparsers)``).
COMMAND_MODULES: tuple[str, ...] = (
    "signrt.cli", "signrt.runtime.cli", "signrt.extract.cli", "signrt.daemon.cli",
    "signrt.train.export_cli",
    "signrt.train.cli",
    "signrt.evaluate.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="signrt",
        description=(
            "Sign-language recognition runtime: landmarks -> features (Rust) -> "
            "ONNX Runtime / TensorRT -> sign labels."
        ),
        epilog="Run `signrt COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"signrt {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def bench_subparsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Return the subcommands of ``signrt bench``, creating ``bench`` if no module did yet.

    Several parts add ``bench`` subcommands (preprocess, inference, pipeline); they share
    one ``bench`` parser.
    """
    parser = sub.choices.get("bench")
    if parser is None:
        parser = sub.add_parser(
            "bench", help="benchmarks (trtexec-style latency reports)",
            description="Latency benchmarks; each writes a trtexec-style report.",
        )
        inner = parser.add_subparsers(dest="bench_command", metavar="BENCH")
        inner.required = True
        return inner
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action  # type: ignore[no-any-return]
    raise RuntimeError("the 'bench' command has no subcommands parser")  # pragma: no cover


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the foundation's own commands (``features``)."""
    p = sub.add_parser(
        "features",
        help="preprocess clips with a FeatureSpec and print shapes, mask length and timing",
        description=(
            "Read landmark clips (.parquet Kaggle layout, .npy/.npz, .pose), run the native "
            "preprocessing and print the feature shape, the number of real frames and the time "
            "it took."
        ),
    )
    p.add_argument("clips", nargs="+", metavar="CLIP", help="landmark clip files")
    p.add_argument(
        "--spec",
        default="islr118",
        help="preset name (islr118, hands_pose, parts4) or a FeatureSpec JSON file",
    )
    p.add_argument("--repeat", type=int, default=100, help="timing repetitions (default 100)")
    p.set_defaults(func=_cmd_features)


def _cmd_features(args: argparse.Namespace) -> int:
    from .features import Preprocessor
    from .io import read_clip
    from .spec import FeatureSpec

    pre = Preprocessor(FeatureSpec.resolve(args.spec))
    spec = pre.spec
    print(f"spec {spec.fingerprint}: P={spec.num_points} F={spec.num_features} L={spec.max_len}")
    for path in args.clips:
        clip = read_clip(path)
        feats, mask = pre(clip)
        reps = max(1, args.repeat)
        t0 = time.perf_counter()
        for _ in range(reps):
            pre(clip)
        us = (time.perf_counter() - t0) / reps * 1e6
        print(
            f"{path}: clip {tuple(clip.shape)} -> features {tuple(feats.shape)}, "
            f"mask {int(mask.sum())}/{mask.shape[0]} real frames, {us:.1f} µs/clip"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``signrt`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (SignrtError, OSError) as exc:
        # Expected failures (bad input, missing file, unavailable device): one clear line.
        print(f"signrt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
