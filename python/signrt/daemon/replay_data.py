"""The bundled replay clip: a few signs of the synthetic signer, one after another.

``signrt serve`` and ``signrt demo`` replay ``data/replay_demo.parquet`` when given no
source, so they run on any machine without a camera, MediaPipe or OpenCV. The clip is made
by :func:`build_replay_clip` from :mod:`signrt.synthetic` (made-up gestures labelled
``sign00`` ..., not a sign language), with rests (hands out of view) between the signs.
Regenerate it with ``python -m signrt.daemon.replay_data`` (needs NumPy and pyarrow only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["REPLAY_LABELS", "REPLAY_SIGNER", "build_replay_clip", "write_bundled_replay"]

#: Classes signed in the bundled clip, in order (labels ``sign{k:02d}``).
REPLAY_LABELS: tuple[int, ...] = (0, 5, 10, 3, 14, 8)
#: Synthetic signer of the clip (right-handed, few dropped detections).
REPLAY_SIGNER = 2
_REST_FRAMES = 15


def build_replay_clip(
    labels: tuple[int, ...] = REPLAY_LABELS,
    signer: int = REPLAY_SIGNER,
    *,
    rest_frames: int = _REST_FRAMES,
    decimals: int = 3,
) -> tuple[npt.NDArray[np.float32], list[tuple[str, int, int]]]:
    """Concatenate synthetic signs with rests between them.

    Args:
        labels: Class indices of the default synthetic configuration.
        signer: Signer index.
        rest_frames: Frames with hands out of view before each sign and at the end.
        decimals: Coordinates are rounded to this many decimals (keeps the file small).

    Returns:
        The (T, 543, 3) clip and, per sign, ``(label name, first frame, last frame)``.
    """
    from ..layouts import LEFT_HAND, RIGHT_HAND
    from ..synthetic import SyntheticConfig, SyntheticSigner

    cfg = SyntheticConfig()
    gen = SyntheticSigner(cfg)
    names = cfg.label_names
    parts: list[npt.NDArray[np.float32]] = []
    spans: list[tuple[str, int, int]] = []
    t = 0
    for k in labels:
        clip = gen.clip(k, signer, 0)
        rest = np.repeat(clip[:1], rest_frames, axis=0).copy()
        rest[:, LEFT_HAND.start : LEFT_HAND.stop] = np.nan
        rest[:, RIGHT_HAND.start : RIGHT_HAND.stop] = np.nan
        parts += [rest, clip]
        t += rest_frames
        spans.append((names[k], t, t + len(clip) - 1))
        t += len(clip)
    tail = np.repeat(parts[-1][-1:], rest_frames, axis=0).copy()
    tail[:, LEFT_HAND.start : LEFT_HAND.stop] = np.nan
    tail[:, RIGHT_HAND.start : RIGHT_HAND.stop] = np.nan
    parts.append(tail)
    out = np.round(np.concatenate(parts).astype(np.float64), decimals).astype(np.float32)
    return out, spans


def write_bundled_replay(path: str | Path | None = None) -> Path:
    """Write the bundled clip (default: ``signrt/daemon/data/replay_demo.parquet``).

    The file has the Kaggle columns except the redundant ``row_id``, float32 coordinates
    and zstd compression, which keeps it near 400 kB; every signrt reader takes it.
    """
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from .._fs import atomic_write
    from ..io.kaggle import write_parquet

    default = Path(__file__).parent / "data" / "replay_demo.parquet"
    dest = Path(path) if path is not None else default
    clip, _ = build_replay_clip()
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.parquet"
        write_parquet(full, clip)
        table = pq.read_table(full).drop_columns(["row_id"]).replace_schema_metadata(None)
    for name in ("x", "y", "z"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.float32()))
    with atomic_write(dest) as fh:
        pq.write_table(table, fh, compression="zstd", compression_level=19)
    return dest


if __name__ == "__main__":  # pragma: no cover
    written = write_bundled_replay()
    print(f"wrote {written} ({written.stat().st_size} bytes)")
