"""FeatureSpec: the one preprocessing contract shared by training and serving.

A FeatureSpec is a small JSON document (DESIGN §3). The trainer writes it into every
exported model, the runtime reads it back, and both the Rust core and the NumPy reference
execute it.

The contract is implemented once, in the Rust core (``signrt-core``, reached through
``signrt._native``): validation, the JSON forms, the fingerprint and the presets. This module
is its typed view: frozen dataclasses whose every constructor sends the fields to the core,
which checks them and hands back the canonical values. A rejected spec raises
:class:`~signrt.errors.SpecError` whose ``field`` is the field path (``"landmarks"``,
``"normalize.kind"``) and whose one-line message starts with the exact location
(``landmarks[3]: expected ..., got ...``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

from . import _native, layouts
from .errors import SpecError

__all__ = ["SPEC_VERSION", "FeatureSpec", "Normalize"]

#: The spec format version this signrt reads and writes.
SPEC_VERSION: Final[int] = _native.SPEC_VERSION
#: Upper bound on max_len (and so on every motion lag).
MAX_LEN_LIMIT: Final[int] = _native.MAX_LEN_LIMIT
#: Upper bound on the number of motion lags.
MAX_LAGS: Final[int] = _native.MAX_LAGS
#: Upper bound on max_len x num_features, the float32 values of one preprocessed clip.
MAX_VALUES_PER_CLIP: Final[int] = _native.MAX_VALUES_PER_CLIP

NormalizeKind = Literal["reference_rms", "shoulders", "none"]
FitMode = Literal["truncate", "resample"]

#: Body parts in the order models that tokenise by part expect them (the parts4 grouping).
PART_ORDER: Final = ("pose", "face", "right_hand", "left_hand")


@dataclass(frozen=True)
class Normalize:
    """How landmarks are centred and scaled (DESIGN §3, step 3).

    Validated on construction (by the core): ``Normalize("shoulders")``,
    ``Normalize("none")`` and ``Normalize("reference_rms", 17)`` are valid;
    ``Normalize("reference_rms")`` is not (it needs a reference) and neither is a reference
    with another kind.

    Attributes:
        kind: ``reference_rms`` (centre on a reference landmark, scale by the RMS distance
            of the selected points), ``shoulders`` (centre between the shoulders, scale by
            their distance) or ``none``.
        reference: The layout index of the reference landmark: required for
            ``reference_rms``, ``None`` otherwise.

    Raises:
        SpecError: With ``field`` ``normalize.kind`` or ``normalize.reference``.
    """

    kind: NormalizeKind
    reference: int | None = None

    def __post_init__(self) -> None:
        kind, reference = _native.check_normalize(self.to_dict())
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "reference", reference)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of this normalisation (``reference`` only when set)."""
        if self.reference is None:
            return {"kind": self.kind}
        return {"kind": self.kind, "reference": self.reference}


def _islr_normalize() -> Normalize:
    return Normalize("reference_rms", 17)


@dataclass(frozen=True)
class FeatureSpec:
    """A preprocessing contract: which landmarks, how normalised, how long, which motion.

    Build one from a preset (``FeatureSpec.preset("islr118")``), from JSON
    (``FeatureSpec.from_json(text)``), from a parsed JSON object (:meth:`from_dict`) or
    directly; every constructor validates through the core and stores the canonical values
    (tuples, a float ``nan_fill``). The dataclass is frozen: derive variants with
    :meth:`replace`. Equal specs are equal, hash alike, share a fingerprint and pickle
    through their JSON.

    Attributes:
        landmarks: Layout indices to select, in output order (each once, at most 543).
        coords: 2 (x, y) or 3 (x, y, z).
        normalize: The normalisation step (a :class:`Normalize`, or its JSON object).
        max_len: L, the number of output frames (1..4096; clips are truncated/resampled and
            padded).
        fit: ``truncate`` (keep the first max_len frames) or ``resample`` (linear
            interpolation onto max_len frames when longer).
        motion_lags: Lags k of the motion features x[t+k] - x[t]: at most 16, strictly
            increasing, each in 1..max_len.
        drop_empty_frames: Remove frames in which every selected value is missing.
        nan_fill: The finite value that replaces missing values in the output.
        layout: The landmark layout; only ``holistic-543``.
        version: The spec format version; only 1.

    Raises:
        SpecError: From every constructor, for a spec the core rejects (see the module
            docstring); also when ``max_len x num_features`` exceeds
            :data:`MAX_VALUES_PER_CLIP`.
    """

    landmarks: tuple[int, ...]
    coords: int = 2
    normalize: Normalize = field(default_factory=_islr_normalize)
    max_len: int = 64
    fit: FitMode = "truncate"
    motion_lags: tuple[int, ...] = (1, 2)
    drop_empty_frames: bool = True
    nan_fill: float = 0.0
    layout: str = layouts.LAYOUT
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        self._adopt(_native.Spec.from_object(_json_ready(doc)))

    def _adopt(self, native: _native.Spec) -> None:
        """Take the canonical field values of a validated core spec (and keep it)."""
        kind, reference = native.normalize
        values: dict[str, Any] = {
            "landmarks": native.landmarks,
            "coords": native.coords,
            "normalize": _trusted_normalize(kind, reference),
            "max_len": native.max_len,
            "fit": native.fit,
            "motion_lags": native.motion_lags,
            "drop_empty_frames": native.drop_empty_frames,
            "nan_fill": native.nan_fill,
            "layout": _native.LAYOUT,
            "version": _native.SPEC_VERSION,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        # The core object that preprocessing runs on (features.py picks it up by this name).
        object.__setattr__(self, "_native_spec", native)

    @classmethod
    def _view(cls, native: _native.Spec) -> FeatureSpec:
        """Wrap a spec the core has already validated, without checking it again."""
        spec = object.__new__(cls)
        spec._adopt(native)
        return spec

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickled as its JSON and validated again on loading.
        return (type(self).from_json, (self.to_json(),))

    # --------------------------------------------------------------------- derived sizes
    @property
    def native(self) -> _native.Spec:
        """The core spec this view wraps (what the preprocessing functions run on)."""
        return cast(_native.Spec, self.__dict__["_native_spec"])

    @property
    def num_points(self) -> int:
        """P, the number of selected landmarks."""
        return self.native.num_points

    @property
    def channels(self) -> int:
        """C_out, channels per point: coords × (1 + number of lags)."""
        return self.native.channels

    @property
    def num_features(self) -> int:
        """F = P · C_out, the width of a feature row."""
        return self.native.num_features

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
        return cast(dict[str, Any], json.loads(self.native.to_json()))

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialise to JSON text: compact (the form stored in model files) or indented."""
        return self.native.to_json(indent)

    def canonical_json(self) -> str:
        """Return the canonical JSON: sorted keys, no white space. The fingerprint hashes it."""
        return self.native.canonical_json()

    @property
    def fingerprint(self) -> str:
        """A stable 16-hex-digit hash of the canonical JSON; equal specs share it."""
        return self.native.fingerprint

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Build and validate a spec from a parsed JSON object.

        Raises:
            SpecError: On a missing or unknown key, a wrong type or a value out of range;
                ``err.field`` names the field path.
        """
        return cls._view(_native.Spec.from_object(_json_ready(data)))

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        """Parse and validate a spec from JSON text (str, or UTF-8 bytes).

        The text must be strict JSON (RFC 8259: no ``NaN`` tokens, no duplicate keys) of at
        most 1 MiB.

        Raises:
            SpecError: If the text is not JSON (nested too deep, a number out of range,
                invalid UTF-8, ...; ``field`` is None) or the spec is invalid.
        """
        return cls._view(_native.Spec(text))

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
                data = path.read_bytes()
            except OSError as exc:
                raise SpecError(f"cannot read FeatureSpec file {path}: {exc}") from exc
            return cls.from_json(data)
        return cls.preset(str(value))

    # -------------------------------------------------------------------------- presets
    @staticmethod
    def presets() -> list[str]:
        """Names accepted by :meth:`preset`, sorted."""
        return _native.Spec.presets()

    @classmethod
    def preset(cls, name: str, **changes: Any) -> FeatureSpec:
        """Return a named preset, optionally with fields changed.

        Presets (defined in the core, DESIGN §3):
            ``islr118``: the Kaggle ASL Signs 1st-place landmark set (40 lips, both hands,
                4 nose, 16 + 16 eyes), xy, reference_rms on the lower-lip centre (17),
                lags [1, 2], max_len 64.
            ``hands_pose``: upper-body pose (489-513) and both hands, shoulders
                normalisation; for data without a face.
            ``parts4``: upper-body pose, the islr118 face points, right hand, left hand,
                ordered by part so that :meth:`part_groups` gives contiguous tokens.

        Raises:
            SpecError: For an unknown name (``field`` None), or changes the core rejects.
        """
        base = cls._view(_native.Spec.preset(name))
        return base.replace(**changes) if changes else base


def _trusted_normalize(kind: str, reference: int | None) -> Normalize:
    """A Normalize from values the core has validated (no second check)."""
    norm = object.__new__(Normalize)
    object.__setattr__(norm, "kind", kind)
    object.__setattr__(norm, "reference", reference)
    return norm


def _json_ready(data: Any) -> Any:
    """``data`` with Normalize objects turned into their JSON objects (nothing is checked)."""
    if isinstance(data, Normalize):
        return data.to_dict()
    if isinstance(data, Mapping):
        return {k: _json_ready(v) if k == "normalize" else v for k, v in data.items()}
    return data
