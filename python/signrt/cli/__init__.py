"""The ``signrt`` command: the one place where the command line is assembled.

Every command module has ``register(subparsers)`` and is listed in :data:`COMMAND_MODULES`:
the runtime's (``info``, ``predict``), the benchmarks (``bench preprocess|inference|
pipeline``), ``extract`` and ``features`` live in this package; the daemon's (``serve``,
``demo``) and the trainer's (``train``, ``eval``, ``export``, ``quantize``) sit with their
parts for now. The CLI is the top layer (DESIGN §8): nothing below imports it.

Errors: any :class:`~signrt.errors.SignrtError` (and ``OSError``, e.g. a missing file) is
printed as one line ``signrt COMMAND: error: ...`` with exit status 2, and so is an argument
error (``--batch 0``); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Sequence
from typing import NoReturn, cast

from .._version import package_version
from ..errors import SignrtError
from ._args import positive_int

__all__ = ["COMMAND_MODULES", "build_parser", "command_names", "main"]

log = logging.getLogger("signrt")

#: Modules that contribute subcommands (each defines ``register(subparsers)``).
COMMAND_MODULES: tuple[str, ...] = (
    "signrt.cli",
    "signrt.cli.runtime",
    "signrt.cli.bench",
    "signrt.cli.extract",
    "signrt.daemon.cli",
    "signrt.train.export_cli",
    "signrt.train.cli",
    "signrt.cli.evaluate",
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``signrt bench: error: ...``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    return _build()[0]


def command_names() -> list[str]:
    """The names of the top-level subcommands, sorted."""
    return sorted(_build()[1].choices)


def _build() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser = _Parser(
        prog="signrt",
        description=(
            "Sign-language recognition runtime: landmarks -> features (Rust) -> "
            "ONNX Runtime / TensorRT -> sign labels."
        ),
        epilog="Run `signrt COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"signrt {package_version()}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser, cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub)


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
    p.add_argument("--repeat", type=positive_int, default=100,
                   help="timing repetitions (default 100)")
    p.set_defaults(func=_cmd_features)


def _cmd_features(args: argparse.Namespace) -> int:
    from ..features import Preprocessor
    from ..io import read_clip
    from ..spec import FeatureSpec

    pre = Preprocessor(FeatureSpec.resolve(args.spec))
    spec = pre.spec
    print(f"spec {spec.fingerprint}: P={spec.num_points} F={spec.num_features} L={spec.max_len}")
    for path in args.clips:
        clip = read_clip(path)
        feats, mask = pre(clip)
        reps = args.repeat
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
        # Deliberate errors (bad input, missing file, unavailable device): one clear line.
        # Anything else is a bug and propagates with its traceback.
        print(f"signrt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
