"""Type stub of the Rust extension ``signrt._native`` (private; use the signrt package)."""

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str
simd: str  # the preprocessing hot path's instruction set: "baseline", "avx2" or "avx512"

SPEC_VERSION: int
LAYOUT: str
MAX_LEN_LIMIT: int
MAX_LAGS: int
MAX_VALUES_PER_CLIP: int
DEFAULT_MOTION_SHOULDER: float  # segment mode's motion threshold, shoulder widths / frame
DEFAULT_MOTION_IMAGE: float  # the same in image units / frame

def _set_alloc_limit(bytes: int) -> int:
    """Set the largest single allocation (bytes) of the core; returns the previous limit."""

class Spec:
    """A FeatureSpec: the one implementation of DESIGN §3 (validation, JSON, presets).

    ``signrt.FeatureSpec`` is its typed view.

    Every constructor raises signrt.errors.SpecError (``field`` = the field path, the
    message one line starting with the exact location) on a bad document.
    """

    def __init__(self, json: str | bytes | bytearray) -> None:
        """Parse strict JSON text (str or UTF-8 bytes, at most 1 MiB) and validate it."""
    @staticmethod
    def from_object(obj: object) -> Spec:
        """Validate a Python mapping with the ten keys of a spec."""
    @staticmethod
    def preset(name: str) -> Spec: ...
    @staticmethod
    def presets() -> list[str]: ...
    def to_json(self, indent: int | None = None) -> str:
        """Compact JSON, keys in DESIGN order (the model-file form), or indented."""
    def canonical_json(self) -> str:
        """Sorted keys, no white space: the text the fingerprint hashes."""
    @property
    def fingerprint(self) -> str: ...
    @property
    def landmarks(self) -> tuple[int, ...]: ...
    @property
    def coords(self) -> int: ...
    @property
    def normalize(self) -> tuple[str, int | None]:
        """(kind, reference or None)."""
    @property
    def max_len(self) -> int: ...
    @property
    def fit(self) -> str: ...
    @property
    def motion_lags(self) -> tuple[int, ...]: ...
    @property
    def drop_empty_frames(self) -> bool: ...
    @property
    def nan_fill(self) -> float: ...
    @property
    def num_points(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def num_features(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Spec], tuple[str]]:
        """Pickle support: a Spec is rebuilt from its JSON."""

def check_normalize(obj: object) -> tuple[str, int | None]:
    """Validate a ``normalize`` object on its own: (kind, reference or None)."""

def preprocess(
    clip: npt.ArrayLike, spec: Spec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(T, 543, 3) -> features (max_len, F) float32, mask (max_len,) float32.

    Zero-copy for float32/float64 views of any strides (C or Fortran order, sliced,
    reversed) in native byte order; any other real dtype, byte order or alignment is
    converted once. Raises signrt.errors.ShapeError (expected vs got) for another shape or
    dtype, signrt.errors.AllocationError if the output cannot be allocated.
    """

def preprocess_batch(
    clips: Iterable[npt.ArrayLike], spec: Spec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Many clips in parallel (rayon, GIL released) -> (B, max_len, F), (B, max_len).

    ShapeError messages start with ``clip {i}: `` naming the bad clip.
    """

class Stream:
    """Sliding window of the last max_len frames with running statistics."""

    def __init__(self, spec: Spec) -> None: ...
    def push(self, frame: npt.ArrayLike) -> None:
        """Append one (543, 3) frame (any strides, read in place), evicting the oldest."""
    def features(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Features of the window; equal to preprocess() of the same frames."""
    def reset(self) -> None: ...
    def __len__(self) -> int:
        """Frames in the window (at most max_len), empty frames included."""
    @property
    def capacity(self) -> int: ...
    @property
    def num_valid(self) -> int:
        """Frames in the window with at least one selected value present."""

Emit = tuple[float, float, float, int]  # (score, start, end, frames) of one sign event

class WindowDecider:
    """Window mode's per-frame decisions (signrt-core ``live::WindowDecider``).

    ``push`` returns True when the window is to be classified; then ``features`` gives its
    input and ``decide`` takes the top-1. Settings out of range raise
    signrt.errors.StreamOptionError; frames of another shape or dtype ShapeError.
    """

    def __init__(
        self,
        spec: Spec,
        *,
        stride: int,
        threshold: float,
        confirm: int,
        cooldown: float,
        min_frames: int,
        require_hand: bool,
        fps: float,
        score: str = "probability",
    ) -> None: ...
    def push(self, frame: npt.ArrayLike, timestamp: float | None = None) -> bool:
        """Add one (543, 3) frame at ``timestamp`` (default previous + 1/fps)."""
    def features(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Features (max_len, F) and mask (max_len,) of the window."""
    def decide(self, label: str, score: float, value: float | None = None) -> Emit | None:
        """The top-1 of the pending classification; the event it confirms, if any.

        ``score`` is compared with the threshold (NaN never reaches it); the event reports
        the mean of the confirming ``value``s (default: the scores).
        """
    def flush(self) -> bool: ...
    def reset(self, clock: bool = False) -> None: ...
    @property
    def stride(self) -> int: ...
    @property
    def threshold(self) -> float: ...
    @property
    def score(self) -> str: ...
    @property
    def confirm(self) -> int: ...
    @property
    def cooldown(self) -> float: ...
    @property
    def min_frames(self) -> int: ...
    @property
    def require_hand(self) -> bool: ...
    @property
    def fps(self) -> float: ...
    @property
    def frames(self) -> int: ...
    @property
    def engine_calls(self) -> int: ...

class SegmentDecider:
    """Segment mode's per-frame decisions (signrt-core ``live::SegmentDecider``).

    ``push`` (or ``flush``) returns True when a segment closed; then ``segment`` gives its
    frames and ``decide`` takes the top-1 score.
    """

    def __init__(
        self,
        spec: Spec,
        *,
        threshold: float,
        rest_frames: int,
        motion_threshold: float | None,
        motion_unit: str,
        min_frames: int,
        max_frames: int | None,
        fps: float,
        score: str = "probability",
    ) -> None: ...
    def push(self, frame: npt.ArrayLike, timestamp: float | None = None) -> bool:
        """Add one (543, 3) frame at ``timestamp`` (default previous + 1/fps)."""
    def segment(self) -> npt.NDArray[np.floating[Any]]:
        """The (n, 543, 3) frames of the segment to classify (float32 if all came so)."""
    def decide(self, score: float, value: float | None = None) -> Emit | None:
        """The top-1 score of the pending segment; its event if it reaches the threshold.

        The event reports ``value`` (default: the score).
        """
    def flush(self) -> bool: ...
    def reset(self, clock: bool = False) -> None: ...
    @property
    def threshold(self) -> float: ...
    @property
    def score(self) -> str: ...
    @property
    def rest_frames(self) -> int: ...
    @property
    def motion_threshold(self) -> float: ...
    @property
    def motion_unit(self) -> str: ...
    @property
    def min_frames(self) -> int: ...
    @property
    def max_frames(self) -> int: ...
    @property
    def fps(self) -> float: ...
    @property
    def frames(self) -> int: ...
    @property
    def engine_calls(self) -> int: ...
    @property
    def open_frames(self) -> int: ...

def softmax_topk(
    logits: npt.NDArray[np.float32], k: int
) -> list[list[tuple[int, float]]]:
    """Softmax of each row of (B, K) float32 logits and its k best classes, best first.

    Computed in float64; ties keep the lower class first; k = 0 gives empty rows.
    Raises ModelError on a non-finite logit.
    """
