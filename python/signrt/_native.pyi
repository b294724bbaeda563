"""Type stub of the Rust extension ``signrt._native`` (private; use the signrt package)."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__version__: str

class Spec:
    """A FeatureSpec parsed and validated by the Rust core (same rules as spec.py)."""

    def __init__(self, json: str) -> None: ...
    def to_json(self) -> str: ...
    @property
    def max_len(self) -> int: ...
    @property
    def num_points(self) -> int: ...
    @property
    def num_features(self) -> int: ...

def preprocess(
    clip: npt.NDArray[np.generic], spec: Spec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(T, 543, 3) -> features (max_len, F) float32, mask (max_len,) float32."""

def preprocess_batch(
    clips: Sequence[npt.NDArray[np.generic]], spec: Spec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Many clips in parallel (rayon, GIL released) -> (B, max_len, F), (B, max_len)."""

class Stream:
    """Sliding window of the last max_len frames with running statistics."""

    def __init__(self, spec: Spec) -> None: ...
    def push(self, frame: npt.NDArray[np.generic]) -> None:
        """Append one (543, 3) frame, evicting the oldest when the window is full."""
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
