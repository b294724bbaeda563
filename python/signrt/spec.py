"""FeatureSpec: the one preprocessing contract shared by training and serving.

A FeatureSpec is a small JSON document (DESIGN §3). The trainer writes it into every
exported model, the runtime reads it back, and both the Rust core and the NumPy reference
execute it. The Rust core parses and validates the same JSON with the same rules, so a spec
that one side accepts the other accepts too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

from . import layouts
from .errors import SpecError

__all__ = ["SPEC_VERSION", "FeatureSpec", "Normalize"]

SPEC_VERSION: Final = 1
#: Upper bound on max_len and on a motion lag; longer windows are almost surely a mistake.
MAX_LEN_LIMIT: Final = 4096

NormalizeKind = Literal["reference_rms", "shoulders", "none"]
FitMode = Literal["truncate", "resample"]

_NORMALIZE_KINDS: Final = ("reference_rms", "shoulders", "none")
_FITS: Final = ("truncate", "resample")
_KEYS: Final = (
    "version",
    "layout",
    "landmarks",
    "coords",
    "normalize",
    "max_len",
    "fit",
    "motion_lags",
    "drop_empty_frames",
    "nan_fill",
)
#: Body parts in the order models that tokenise by part expect them (the parts4 grouping).
PART_ORDER: Final = ("pose", "face", "right_hand", "left_hand")


@dataclass(frozen=True)
class Normalize:
    """How landmarks are centred and scaled (DESIGN §3, step 3).

    Attributes:
        kind: ``reference_rms`` (centre on a reference landmark, scale by the RMS distance
            of the selected points), ``shoulders`` (centre between the shoulders, scale by
            their distance) or ``none``.
        reference: The layout index of the reference landmark, required for
            ``reference_rms`` and absent otherwise.
    """

    kind: NormalizeKind = "reference_rms"
    reference: int | None = 17

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of this normalisation."""
        if self.kind == "reference_rms":
            return {"kind": self.kind, "reference": self.reference}
        return {"kind": self.kind}


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{name} must be an integer, got {value!r}", name)
    return value


@dataclass(frozen=True)
class FeatureSpec:
    """A preprocessing contract: which landmarks, how normalised, how long, which motion.

    Build one from a preset (``FeatureSpec.preset("islr118")``), from JSON
    (``FeatureSpec.from_json(text)``) or directly; every constructor validates. The dataclass
    is frozen: derive variants with :meth:`replace`.

    Attributes:
        landmarks: Layout indices to select, in output order (no duplicates).
        coords: 2 (x, y) or 3 (x, y, z).
        normalize: The normalisation step.
        max_len: L, the number of output frames (clips are truncated/resampled and padded).
        fit: ``truncate`` (keep the first max_len frames) or ``resample`` (linear
            interpolation onto max_len frames when longer).
        motion_lags: Lags k of the motion features x[t+k] - x[t], strictly increasing.
        drop_empty_frames: Remove frames in which every selected value is missing.
        nan_fill: The value that replaces missing values in the output.
        layout: The landmark layout; only ``holistic-543``.
        version: The spec format version; only 1.
    """

    landmarks: tuple[int, ...]
    coords: int = 2
    normalize: Normalize = field(default_factory=Normalize)
    max_len: int = 64
    fit: FitMode = "truncate"
    motion_lags: tuple[int, ...] = (1, 2)
    drop_empty_frames: bool = True
    nan_fill: float = 0.0
    layout: str = layouts.LAYOUT
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        # Accept lists for convenience but store tuples, so the spec stays hashable.
        object.__setattr__(self, "landmarks", tuple(self.landmarks))
        object.__setattr__(self, "motion_lags", tuple(self.motion_lags))
        if isinstance(self.normalize, Mapping):
            object.__setattr__(self, "normalize", _parse_normalize(self.normalize))
        self._validate()

    # ----------------------------------------------------------------------------- checks
    def _validate(self) -> None:
        if _int(self.version, "version") != SPEC_VERSION:
            raise SpecError(
                f"version: unsupported spec version {self.version}, this signrt reads "
                f"version {SPEC_VERSION}",
                "version",
            )
        if self.layout != layouts.LAYOUT:
            raise SpecError(
                f"layout: unknown layout {self.layout!r}, expected {layouts.LAYOUT!r} "
                "(other layouts are adapted by the readers)",
                "layout",
            )
        if len(self.landmarks) == 0:
            raise SpecError("landmarks: the list is empty, select at least one", "landmarks")
        seen: set[int] = set()
        for i in self.landmarks:
            _int(i, "landmarks")
            if not 0 <= i < layouts.NUM_LANDMARKS:
                raise SpecError(
                    f"landmarks: index {i} is outside the layout (0-{layouts.NUM_LANDMARKS - 1})",
                    "landmarks",
                )
            if i in seen:
                raise SpecError(f"landmarks: index {i} appears twice", "landmarks")
            seen.add(i)
        if _int(self.coords, "coords") not in (2, 3):
            raise SpecError(f"coords: must be 2 (x, y) or 3 (x, y, z), got {self.coords}", "coords")
        if not isinstance(self.normalize, Normalize):
            raise SpecError("normalize: must be an object with a 'kind'", "normalize")
        _check_normalize(self.normalize)
        _int(self.max_len, "max_len")
        if not 1 <= self.max_len <= MAX_LEN_LIMIT:
            raise SpecError(
                f"max_len: must be between 1 and {MAX_LEN_LIMIT}, got {self.max_len}", "max_len"
            )
        if self.fit not in _FITS:
            raise SpecError(f"fit: must be one of {list(_FITS)}, got {self.fit!r}", "fit")
        prev = 0
        for k in self.motion_lags:
            _int(k, "motion_lags")
            if k <= prev:
                raise SpecError(
                    f"motion_lags: lags must be positive and strictly increasing, got "
                    f"{list(self.motion_lags)}",
                    "motion_lags",
                )
            if k >= self.max_len:
                raise SpecError(
                    f"motion_lags: lag {k} must be smaller than max_len ({self.max_len})",
                    "motion_lags",
                )
            prev = k
        if not isinstance(self.drop_empty_frames, bool):
            raise SpecError(
                f"drop_empty_frames: must be true or false, got {self.drop_empty_frames!r}",
                "drop_empty_frames",
            )
        if isinstance(self.nan_fill, bool) or not isinstance(self.nan_fill, (int, float)):
            raise SpecError(f"nan_fill: must be a number, got {self.nan_fill!r}", "nan_fill")
        if not math.isfinite(self.nan_fill):
            raise SpecError(f"nan_fill: must be finite, got {self.nan_fill!r}", "nan_fill")

    # --------------------------------------------------------------------- derived sizes
    @property
    def num_points(self) -> int:
        """P, the number of selected landmarks."""
        return len(self.landmarks)

    @property
    def channels(self) -> int:
        """C_out, channels per point: coords × (1 + number of lags)."""
        return self.coords * (1 + len(self.motion_lags))

    @property
    def num_features(self) -> int:
        """F = P · C_out, the width of a feature row."""
        return self.num_points * self.channels

    def part_groups(self) -> dict[str, list[int]]:
        """Group the selected points by body part, for models that tokenise by part.

        Returns:
            An ordered mapping ``part -> positions in landmarks`` over the parts4 order
            (pose, face, right_hand, left_hand); parts with no selected point are left out.
            Point p occupies feature columns ``p * channels`` to ``(p + 1) * channels``.
        """
        groups: dict[str, list[int]] = {name: [] for name in PART_ORDER}
        for pos, idx in enumerate(self.landmarks):
            groups[layouts.part_of(idx)].append(pos)
        return {k: v for k, v in groups.items() if v}

    # ---------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of this spec (all keys, DESIGN §3 order)."""
        return {
            "version": self.version,
            "layout": self.layout,
            "landmarks": list(self.landmarks),
            "coords": self.coords,
            "normalize": self.normalize.to_dict(),
            "max_len": self.max_len,
            "fit": self.fit,
            "motion_lags": list(self.motion_lags),
            "drop_empty_frames": self.drop_empty_frames,
            "nan_fill": float(self.nan_fill),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialise to JSON text (the form stored in model files)."""
        return json.dumps(self.to_dict(), indent=indent)

    def canonical_json(self) -> str:
        """Return the canonical JSON: sorted keys, no white space. The fingerprint hashes it."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def fingerprint(self) -> str:
        """A stable 16-hex-digit hash of the canonical JSON; equal specs share it."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Build and validate a spec from a parsed JSON object.

        Raises:
            SpecError: On a missing or unknown key, a wrong type or a value out of range;
                ``err.field`` names the field.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"a FeatureSpec must be a JSON object, got {type(data).__name__}")
        unknown = [k for k in data if k not in _KEYS]
        if unknown:
            raise SpecError(
                f"{unknown[0]}: unknown key in FeatureSpec (known keys: {', '.join(_KEYS)})",
                str(unknown[0]),
            )
        for key in _KEYS:
            if key not in data:
                raise SpecError(f"{key}: missing key in FeatureSpec", key)
        for key in ("landmarks", "motion_lags"):
            if not isinstance(data[key], Sequence) or isinstance(data[key], (str, bytes)):
                raise SpecError(f"{key}: must be a list of integers, got {data[key]!r}", key)
        for key in ("layout", "fit"):
            if not isinstance(data[key], str):
                raise SpecError(f"{key}: must be a string, got {data[key]!r}", key)
        return cls(
            version=data["version"],
            layout=data["layout"],
            landmarks=tuple(data["landmarks"]),
            coords=data["coords"],
            normalize=_parse_normalize(data["normalize"]),
            max_len=data["max_len"],
            fit=cast(FitMode, data["fit"]),
            motion_lags=tuple(data["motion_lags"]),
            drop_empty_frames=data["drop_empty_frames"],
            nan_fill=data["nan_fill"],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        """Parse and validate a spec from JSON text.

        Raises:
            SpecError: If the text is not JSON or the spec is invalid.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"FeatureSpec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> FeatureSpec:
        """Return a copy with some fields changed (validated like any new spec)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def resolve(cls, value: FeatureSpec | str | os.PathLike[str]) -> FeatureSpec:
        """Turn what a user may pass as a spec into a FeatureSpec.

        Args:
            value: A FeatureSpec (returned as is), JSON text, the path of a JSON file, or a
                preset name.

        Raises:
            SpecError: If the file cannot be read, or the JSON or the name is not a spec.
        """
        if isinstance(value, FeatureSpec):
            return value
        if isinstance(value, str) and value.lstrip().startswith("{"):
            return cls.from_json(value)
        path = Path(value)
        if path.suffix == ".json" or path.is_file():
            try:
                text = path.read_text()
            except OSError as exc:
                raise SpecError(f"cannot read FeatureSpec file {path}: {exc}") from exc
            return cls.from_json(text)
        return cls.preset(str(value))

    # -------------------------------------------------------------------------- presets
    @staticmethod
    def presets() -> list[str]:
        """Names accepted by :meth:`preset`."""
        return sorted(_PRESETS)

    @classmethod
    def preset(cls, name: str, **changes: Any) -> FeatureSpec:
        """Return a named preset, optionally with fields changed.

        Presets:
            ``islr118``: the Kaggle ASL Signs 1st-place landmark set (40 lips, both hands,
                4 nose, 16 + 16 eyes), xy, reference_rms on the lower-lip centre (17),
                lags [1, 2], max_len 64.
            ``hands_pose``: upper-body pose (489-513) and both hands, shoulders
                normalisation; for data without a face.
            ``parts4``: upper-body pose, the islr118 face points, right hand, left hand,
                ordered by part so that :meth:`part_groups` gives contiguous tokens.

        Raises:
            SpecError: For an unknown name.
        """
        try:
            base = _PRESETS[name]
        except KeyError:
            raise SpecError(
                f"unknown preset {name!r}; available: {', '.join(sorted(_PRESETS))}"
            ) from None
        return base.replace(**changes) if changes else base


def _parse_normalize(data: Any) -> Normalize:
    if not isinstance(data, Mapping):
        raise SpecError(
            f"normalize: must be an object like {{\"kind\": \"reference_rms\", \"reference\": 17}}"
            f", got {data!r}",
            "normalize",
        )
    unknown = [k for k in data if k not in ("kind", "reference")]
    if unknown:
        raise SpecError(
            f"normalize.{unknown[0]}: unknown key (known keys: kind, reference)",
            f"normalize.{unknown[0]}",
        )
    if "kind" not in data:
        raise SpecError("normalize.kind: missing key", "normalize.kind")
    norm = Normalize(kind=data["kind"], reference=data.get("reference"))
    _check_normalize(norm)
    return norm


def _check_normalize(norm: Normalize) -> None:
    if norm.kind not in _NORMALIZE_KINDS:
        raise SpecError(
            f"normalize.kind: unknown normalisation {norm.kind!r}, expected one of "
            f"{list(_NORMALIZE_KINDS)}",
            "normalize.kind",
        )
    if norm.kind == "reference_rms":
        if norm.reference is None:
            raise SpecError(
                "normalize.reference: reference_rms needs a reference landmark index",
                "normalize.reference",
            )
        _int(norm.reference, "normalize.reference")
        if not 0 <= norm.reference < layouts.NUM_LANDMARKS:
            raise SpecError(
                f"normalize.reference: index {norm.reference} is outside the layout "
                f"(0-{layouts.NUM_LANDMARKS - 1})",
                "normalize.reference",
            )
    elif norm.reference is not None:
        raise SpecError(
            f"normalize.reference: only reference_rms takes a reference, not {norm.kind!r}",
            "normalize.reference",
        )


_ISLR118 = (
    *layouts.LIPS,
    *layouts.LEFT_HAND,
    *layouts.RIGHT_HAND,
    *layouts.NOSE,
    *layouts.RIGHT_EYE,
    *layouts.LEFT_EYE,
)
_FACE76 = (*layouts.LIPS, *layouts.NOSE, *layouts.RIGHT_EYE, *layouts.LEFT_EYE)

_PRESETS: Final[dict[str, FeatureSpec]] = {
    "islr118": FeatureSpec(landmarks=_ISLR118),
    "hands_pose": FeatureSpec(
        landmarks=(*layouts.POSE_UPPER, *layouts.LEFT_HAND, *layouts.RIGHT_HAND),
        normalize=Normalize(kind="shoulders", reference=None),
    ),
    "parts4": FeatureSpec(
        landmarks=(*layouts.POSE_UPPER, *_FACE76, *layouts.RIGHT_HAND, *layouts.LEFT_HAND),
    ),
}
