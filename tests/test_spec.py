"""FeatureSpec: presets, JSON round trip, validation errors naming the field path, fingerprint,
and hostile documents (deep nesting, huge numbers, bad bytes, absurd sizes)."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signrt import FeatureSpec, Normalize, SpecError, _native, layouts
from signrt.spec import MAX_LAGS, MAX_VALUES_PER_CLIP

PRESETS = FeatureSpec.presets()


def test_presets_listed():
    assert PRESETS == ["hands_pose", "islr118", "parts4"]


def test_islr118_matches_design():
    s = FeatureSpec.preset("islr118")
    assert s.num_points == 118
    assert s.coords == 2
    assert s.motion_lags == (1, 2)
    assert s.normalize == Normalize("reference_rms", 17)
    assert s.channels == 6
    assert s.num_features == 708
    assert s.landmarks == (*layouts.LIPS, *layouts.LEFT_HAND, *layouts.RIGHT_HAND,
                           *layouts.NOSE, *layouts.RIGHT_EYE, *layouts.LEFT_EYE)  # fmt: skip


def test_hands_pose_has_no_face():
    s = FeatureSpec.preset("hands_pose")
    assert s.normalize == Normalize("shoulders")
    assert s.landmarks == (*layouts.POSE_UPPER, *layouts.LEFT_HAND, *layouts.RIGHT_HAND)
    assert all(layouts.part_of(i) != "face" for i in s.landmarks)


def test_parts4_groups_contiguous_in_order():
    s = FeatureSpec.preset("parts4")
    groups = s.part_groups()
    assert list(groups) == ["pose", "face", "right_hand", "left_hand"]
    flat = [p for g in groups.values() for p in g]
    assert flat == list(range(s.num_points))
    assert len(groups["right_hand"]) == 21 and len(groups["left_hand"]) == 21
    assert len(groups["face"]) == 76


def test_part_groups_skip_empty_parts():
    assert list(FeatureSpec.preset("islr118").part_groups()) == ["face", "right_hand", "left_hand"]


@pytest.mark.parametrize("name", PRESETS)
def test_json_round_trip(name):
    s = FeatureSpec.preset(name)
    assert FeatureSpec.from_json(s.to_json()) == s
    assert FeatureSpec.from_json(s.to_json().encode()) == s
    assert FeatureSpec.from_json(s.to_json(indent=2)).fingerprint == s.fingerprint
    assert FeatureSpec.from_dict(s.to_dict()) == s
    assert list(s.to_dict()) == ["version", "layout", "landmarks", "coords", "normalize",
                                 "max_len", "fit", "motion_lags", "drop_empty_frames",
                                 "nan_fill"]  # fmt: skip
    assert json.loads(s.canonical_json()) == s.to_dict()


def test_to_json_is_compact_or_indented():
    s = FeatureSpec.preset("hands_pose")
    assert s.to_json().startswith('{"version":1,"layout":"holistic-543","landmarks":[489,')
    assert '"normalize":{"kind":"shoulders"}' in s.to_json()
    assert s.to_json(indent=2).startswith('{\n  "version": 1,\n  "layout": "holistic-543"')


def test_fingerprint_stable_and_sensitive():
    s = FeatureSpec.preset("islr118")
    # Pinned: a change of the canonical form breaks every stored model's cache key.
    assert s.fingerprint == "1e2cb7bed66d1c20"
    assert s.canonical_json() == json.dumps(s.to_dict(), sort_keys=True, separators=(",", ":"))
    assert s.replace(max_len=32).fingerprint != s.fingerprint
    assert s.replace(nan_fill=0).fingerprint == s.fingerprint  # 0 and 0.0 are the same value
    assert s.replace(nan_fill=-0.0).fingerprint == s.fingerprint  # and so is -0.0
    reordered = json.dumps(dict(reversed(list(s.to_dict().items()))))
    assert FeatureSpec.from_json(reordered).fingerprint == s.fingerprint


def test_the_demo_models_spec_form_loads():
    """The Python json.dumps layout of earlier exports (the bundled demo models) still loads."""
    s = FeatureSpec.preset("islr118")
    old = json.dumps(s.to_dict())  # ", " and ": " separators, as earlier versions wrote
    assert old != s.to_json()
    assert FeatureSpec.from_json(old) == s
    assert FeatureSpec.from_json(old).fingerprint == "1e2cb7bed66d1c20"


def test_replace_validates():
    with pytest.raises(SpecError) as e:
        FeatureSpec.preset("islr118").replace(max_len=0)
    assert e.value.field == "max_len"


def test_preset_with_changes():
    s = FeatureSpec.preset("islr118", max_len=32, fit="resample")
    assert (s.max_len, s.fit) == (32, "resample")


def test_unknown_preset():
    with pytest.raises(SpecError, match=r'^unknown preset "nope", expected one of .*islr118'):
        FeatureSpec.preset("nope")


def test_normalize_kinds_without_reference():
    assert Normalize(kind="shoulders").reference is None
    assert Normalize("none").to_dict() == {"kind": "none"}
    assert Normalize("reference_rms", 5).to_dict() == {"kind": "reference_rms", "reference": 5}
    spec = FeatureSpec(landmarks=(500, 501), normalize=Normalize(kind="shoulders"))
    assert spec.normalize.kind == "shoulders"
    assert FeatureSpec(landmarks=(1,), normalize={"kind": "none"}).normalize == Normalize("none")
    with pytest.raises(SpecError, match=r"^normalize.reference: missing key") as e:
        Normalize("reference_rms")
    assert e.value.field == "normalize.reference"
    with pytest.raises(SpecError, match=r"^normalize.kind: expected one of") as e:
        Normalize("zscore")  # type: ignore[arg-type]
    assert e.value.field == "normalize.kind"


def _doc(**changes: Any) -> dict[str, Any]:
    d = FeatureSpec.preset("islr118").to_dict()
    for k, v in changes.items():
        if v is _DELETE:
            del d[k]
        else:
            d[k] = v
    return d


_DELETE = object()

#: (changes, field path, message start). Every message: "{location}: expected ..., got ...".
BAD_SPECS = [
    ({"extra": 1}, "extra", "extra: unknown key, expected one of the keys version, layout"),
    ({"fit": _DELETE}, "fit", 'fit: missing key, expected "truncate" or "resample"'),
    ({"version": 2}, "version", "version: expected 1 (the spec format version this signrt "
     "reads), got 2"),
    ({"version": "1"}, "version", 'version: expected 1 (the spec format version this signrt '
     'reads), got "1"'),
    ({"version": True}, "version", "version: expected 1 (the spec format version this signrt "
     "reads), got true"),
    ({"layout": "holistic-553"}, "layout", 'layout: expected "holistic-543" (other layouts are '
     'adapted by the readers), got "holistic-553"'),
    ({"landmarks": []}, "landmarks", "landmarks: expected a non-empty list of distinct layout "
     "indices (integers in 0..=542), got an empty list"),
    ({"landmarks": [0, 543]}, "landmarks", "landmarks[1]: expected a layout index, an integer "
     "in 0..=542, got 543"),
    ({"landmarks": [-1]}, "landmarks", "landmarks[0]: expected a layout index, an integer in "
     "0..=542, got -1"),
    ({"landmarks": [3, 5, 3]}, "landmarks", "landmarks[2]: expected each layout index once (3 "
     "is already landmarks[0]), got 3"),
    ({"landmarks": [1.5]}, "landmarks", "landmarks[0]: expected a layout index, an integer in "
     "0..=542, got 1.5"),
    ({"landmarks": [1.0]}, "landmarks", "landmarks[0]: expected a layout index, an integer in "
     "0..=542, got 1.0"),
    ({"landmarks": [True]}, "landmarks", "landmarks[0]: expected a layout index, an integer in "
     "0..=542, got true"),
    ({"landmarks": "0,1"}, "landmarks", "landmarks: expected a non-empty list of distinct "
     'layout indices (integers in 0..=542), got "0,1"'),
    ({"landmarks": {"a": 1}}, "landmarks", "landmarks: expected a non-empty list"),
    ({"landmarks": list(range(544))}, "landmarks", "landmarks: expected at most 543 layout "
     "indices (each index once), got a list of 544 items"),
    ({"coords": 4}, "coords", "coords: expected 2 (x, y) or 3 (x, y, z), got 4"),
    ({"coords": True}, "coords", "coords: expected 2 (x, y) or 3 (x, y, z), got true"),
    ({"coords": 2.0}, "coords", "coords: expected 2 (x, y) or 3 (x, y, z), got 2.0"),
    ({"normalize": "reference_rms"}, "normalize", 'normalize: expected an object like {"kind": '
     '"reference_rms", "reference": 17}, got "reference_rms"'),
    ({"normalize": None}, "normalize", "normalize: expected an object like"),
    ({"normalize": {"kind": "zscore"}}, "normalize.kind", 'normalize.kind: expected one of '
     '"reference_rms", "shoulders", "none", got "zscore"'),
    ({"normalize": {"kind": 3}}, "normalize.kind", "normalize.kind: expected one of"),
    ({"normalize": {}}, "normalize.kind", "normalize.kind: missing key, expected one of"),
    ({"normalize": {"kind": "reference_rms"}}, "normalize.reference",
     "normalize.reference: missing key, expected a layout index"),
    ({"normalize": {"kind": "reference_rms", "reference": None}}, "normalize.reference",
     "normalize.reference: missing key, expected a layout index"),
    ({"normalize": {"kind": "reference_rms", "reference": 600}}, "normalize.reference",
     "normalize.reference: expected a layout index, an integer in 0..=542, got 600"),
    ({"normalize": {"kind": "reference_rms", "reference": "17"}}, "normalize.reference",
     'normalize.reference: expected a layout index, an integer in 0..=542, got "17"'),
    ({"normalize": {"kind": "none", "reference": 17}}, "normalize.reference",
     'normalize.reference: expected no reference for kind "none" (only reference_rms takes '
     'one), got 17'),
    ({"normalize": {"kind": "none", "scale": 2}}, "normalize.scale",
     "normalize.scale: unknown key, expected one of the keys kind, reference"),
    ({"max_len": 0}, "max_len", "max_len: expected an integer in 1..=4096, got 0"),
    ({"max_len": 5000}, "max_len", "max_len: expected an integer in 1..=4096, got 5000"),
    ({"max_len": 64.0}, "max_len", "max_len: expected an integer in 1..=4096, got 64.0"),
    ({"fit": "pad"}, "fit", 'fit: expected "truncate" or "resample", got "pad"'),
    ({"fit": 1}, "fit", 'fit: expected "truncate" or "resample", got 1'),
    ({"motion_lags": [2, 1]}, "motion_lags", "motion_lags[1]: expected a lag greater than the "
     "one before (2) and smaller than max_len (64), got 1"),
    ({"motion_lags": [1, 1]}, "motion_lags", "motion_lags[1]: expected a lag greater than the "
     "one before (1)"),
    ({"motion_lags": [0]}, "motion_lags", "motion_lags[0]: expected a lag in 1..max_len "
     "(max_len is 64), got 0"),
    ({"motion_lags": [64]}, "motion_lags", "motion_lags[0]: expected a lag in 1..max_len "
     "(max_len is 64), got 64"),
    ({"motion_lags": ["1"]}, "motion_lags", 'motion_lags[0]: expected a lag in 1..max_len '
     '(max_len is 64), got "1"'),
    ({"motion_lags": 1}, "motion_lags", "motion_lags: expected a list of at most 16 strictly "
     "increasing lags, each in 1..max_len, got 1"),
    ({"motion_lags": list(range(1, 18))}, "motion_lags", "motion_lags: expected at most 16 "
     "lags, got a list of 17 items"),
    ({"drop_empty_frames": 1}, "drop_empty_frames", "drop_empty_frames: expected true or "
     "false, got 1"),
    ({"nan_fill": "0"}, "nan_fill", 'nan_fill: expected a finite number, got "0"'),
    ({"nan_fill": None}, "nan_fill", "nan_fill: expected a finite number, got null"),
    ({"nan_fill": True}, "nan_fill", "nan_fill: expected a finite number, got true"),
    ({"nan_fill": float("nan")}, "nan_fill", "nan_fill: expected a finite number, got NaN"),
    ({"nan_fill": float("-inf")}, "nan_fill", "nan_fill: expected a finite number, got "
     "-Infinity"),
]


@pytest.mark.parametrize(("changes", "field", "start"), BAD_SPECS)
def test_bad_spec_names_field_path(changes, field, start):
    with pytest.raises(SpecError) as e:
        FeatureSpec.from_dict(_doc(**changes))
    assert e.value.field == field
    assert str(e.value).startswith(start)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)
    # The JSON text of the same document is judged alike (NaN/inf have no JSON form).
    if not any(isinstance(v, float) and not np.isfinite(v) for v in changes.values()):
        with pytest.raises(SpecError) as e2:
            FeatureSpec.from_json(json.dumps(_doc(**changes)))
        assert (e2.value.field, str(e2.value)) == (field, str(e.value))


def test_first_unknown_key_in_document_order():
    with pytest.raises(SpecError) as e:
        FeatureSpec.from_json(json.dumps({"zzz": 1, "aaa": 2, **_doc()}))
    assert e.value.field == "zzz"


@pytest.mark.parametrize(
    "doc",
    [
        _doc(normalize={"kind": "shoulders", "reference": None}),
        _doc(nan_fill=2),
        _doc(motion_lags=[]),
        _doc(max_len=1, motion_lags=[]),
        _doc(max_len=4096, fit="resample"),
        _doc(motion_lags=list(range(1, 17))),
        _doc(landmarks=list(range(543)), coords=3, max_len=4096),
    ],
)
def test_good_specs_accepted(doc):
    spec = FeatureSpec.from_dict(doc)
    assert FeatureSpec.from_json(json.dumps(doc)) == spec
    assert FeatureSpec.from_json(spec.to_json()) == spec


def test_bad_json_text():
    for text, start in [
        ("{not json", "FeatureSpec is not valid JSON: key must be a string at line 1 column 2"),
        ("[1, 2]", "a FeatureSpec must be a JSON object, got a list of 2 items"),
        ('"islr118"', 'a FeatureSpec must be a JSON object, got "islr118"'),
        ("", "FeatureSpec is not valid JSON: EOF while parsing"),
        (FeatureSpec.preset("islr118").to_json().replace('"nan_fill":0.0', '"nan_fill":NaN'),
         "FeatureSpec is not valid JSON: expected value"),
        (FeatureSpec.preset("islr118").to_json()[:-1] + ',"max_len":3}',
         'FeatureSpec is not valid JSON: duplicate key "max_len", expected each key once'),
    ]:
        with pytest.raises(SpecError) as e:
            FeatureSpec.from_json(text)
        assert e.value.field is None
        assert str(e.value).startswith(start), str(e.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[" * 100_000 + "]" * 100_000, "recursion limit exceeded"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "recursion limit exceeded"),
        ('{"max_len": 1' + "0" * 400 + "}", "number out of range"),
        ('{"nan_fill": 1e400}', "number out of range"),
        (b'{"layout": "\xff"}', "not valid UTF-8"),
        (b"\xfe\xff\x00{", "not valid UTF-8"),
        ('{"layout": "\ud800"}', "not valid Unicode"),
        (" " * (1 << 20) + "{}", "expected at most 1048576"),
    ],
)
def test_hostile_json_is_one_line_spec_error(text, fragment):
    """Never RecursionError, OverflowError or UnicodeDecodeError: one SpecError line."""
    with pytest.raises(SpecError) as e:
        FeatureSpec.from_json(text)
    assert type(e.value) is SpecError
    assert e.value.field is None
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_hostile_python_objects_are_spec_errors():
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    # Converted only as deep as a spec can go: landmarks[0] is a list, not a stack overflow.
    with pytest.raises(SpecError, match=r"^landmarks\[0\]: .*got a list of 1 item$"):
        FeatureSpec(landmarks=deep)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^landmarks\[0\]: .*got an integer beyond 128 bits"):
        FeatureSpec(landmarks=(10**400,))
    with pytest.raises(SpecError, match=r"^landmarks: .*got a collection of 1000000000 items"):
        FeatureSpec(landmarks=range(10**9))  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^nan_fill: .*got a Python bytes object$"):
        FeatureSpec(landmarks=(1,), nan_fill=b"0")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^a FeatureSpec JSON document must be str or bytes"):
        FeatureSpec.from_json(3)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^a FeatureSpec must be a JSON object, got 3"):
        FeatureSpec.from_dict(3)  # type: ignore[arg-type]


def test_numpy_values_are_accepted_as_their_python_values():
    spec = FeatureSpec(landmarks=np.arange(3), coords=np.int64(3), nan_fill=np.float32(0.5),
                       drop_empty_frames=np.True_, motion_lags=np.array([1]))  # fmt: skip
    assert spec == FeatureSpec(landmarks=(0, 1, 2), coords=3, nan_fill=0.5, motion_lags=(1,))
    assert type(spec.landmarks[0]) is int and type(spec.nan_fill) is float


def test_absurd_sizes_are_rejected_naming_the_limit():
    """543 landmarks x 3 coords x 16 lags x 4096 frames would be 113 M values per clip."""
    with pytest.raises(SpecError) as e:
        FeatureSpec(landmarks=range(543), coords=3, motion_lags=range(1, 17), max_len=4096)  # type: ignore[arg-type]
    assert e.value.field == "max_len"
    assert str(e.value).startswith(
        f"max_len: expected max_len x num_features <= {MAX_VALUES_PER_CLIP} values per clip"
    )
    assert "4096 x 27693 = 113430528" in str(e.value)
    with pytest.raises(SpecError, match="at most 16 lags") as e:
        FeatureSpec(landmarks=(1,), motion_lags=range(1, MAX_LAGS + 2))  # type: ignore[arg-type]
    assert e.value.field == "motion_lags"


def test_direct_construction_validates():
    with pytest.raises(SpecError) as e:
        FeatureSpec(landmarks=(0, 0))
    assert e.value.field == "landmarks"
    with pytest.raises(SpecError) as e:
        FeatureSpec(landmarks=(0,), normalize=Normalize("shoulders", 17))
    assert e.value.field == "normalize.reference"
    with pytest.raises(TypeError):
        FeatureSpec.preset("islr118").replace(nope=1)


def test_spec_is_hashable_frozen_and_picklable():
    s = FeatureSpec.preset("islr118")
    assert hash(s) == hash(FeatureSpec.from_json(s.to_json()))
    with pytest.raises(AttributeError):
        s.max_len = 3  # type: ignore[misc]
    for again in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
        assert again == s and hash(again) == hash(s) and again.fingerprint == s.fingerprint
        assert again.num_features == 708
    assert len({s, FeatureSpec.from_dict(s.to_dict()), s.replace(max_len=8)}) == 2
    assert s != s.replace(nan_fill=1.0)


def test_view_and_core_agree():
    s = FeatureSpec.preset("parts4", coords=3)
    core = s.native
    assert isinstance(core, _native.Spec)
    assert (core.landmarks, core.coords, core.max_len, core.num_features) == (
        s.landmarks, 3, s.max_len, s.num_points * 3 * 3)
    assert core == _native.Spec(s.to_json()) and hash(core) == hash(_native.Spec(s.to_json()))
    assert pickle.loads(pickle.dumps(core)) == core
    assert "fingerprint=" in repr(core)


@settings(max_examples=100, deadline=None)
@given(
    landmarks=st.lists(st.integers(0, 542), min_size=1, max_size=60, unique=True),
    coords=st.sampled_from([2, 3]),
    max_len=st.integers(1, 200),
    fit=st.sampled_from(["truncate", "resample"]),
    lags=st.lists(st.integers(1, 10), max_size=3, unique=True),
    kind=st.sampled_from(["reference_rms", "shoulders", "none"]),
    drop=st.booleans(),
    fill=st.floats(-1e300, 1e300, allow_nan=False) | st.integers(-(10**6), 10**6),
    indent=st.none() | st.integers(0, 4),
)
def test_round_trip_property(landmarks, coords, max_len, fit, lags, kind, drop, fill, indent):
    lags = sorted(k for k in lags if k < max_len)
    norm = Normalize(kind, landmarks[0] if kind == "reference_rms" else None)
    s = FeatureSpec(
        landmarks=tuple(landmarks), coords=coords, normalize=norm, max_len=max_len, fit=fit,
        motion_lags=tuple(lags), drop_empty_frames=drop, nan_fill=fill,
    )
    back = FeatureSpec.from_json(s.to_json(indent=indent))
    assert back == s and hash(back) == hash(s)
    assert back.fingerprint == s.fingerprint
    assert back.nan_fill == float(fill)
    assert pickle.loads(pickle.dumps(s)) == s
    assert s.num_features == len(landmarks) * coords * (1 + len(lags))


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(list(_doc())),
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                    max_size=3),
        max_leaves=6,
    ),
)
def test_any_field_value_is_accepted_or_a_one_line_spec_error(key, value):
    doc = _doc(**{key: value})
    try:
        spec = FeatureSpec.from_dict(doc)
    except SpecError as e:
        assert e.field is not None and e.field.split(".")[0] in doc
        assert str(e).startswith(e.field) and "expected" in str(e) and "\n" not in str(e)
    else:
        assert FeatureSpec.from_json(spec.to_json()) == spec


def test_resolve_every_form(tmp_path):
    s = FeatureSpec.preset("hands_pose", max_len=16)
    (tmp_path / "s.json").write_text(s.to_json())
    assert FeatureSpec.resolve(s) is s
    assert FeatureSpec.resolve(s.to_json()) == s
    assert FeatureSpec.resolve(tmp_path / "s.json") == s
    assert FeatureSpec.resolve(str(tmp_path / "s.json")) == s
    assert FeatureSpec.resolve("hands_pose") == FeatureSpec.preset("hands_pose")


def test_resolve_errors(tmp_path):
    with pytest.raises(SpecError, match=r"cannot read FeatureSpec file .*missing\.json"):
        FeatureSpec.resolve(tmp_path / "missing.json")
    with pytest.raises(SpecError, match='unknown preset "nope"'):
        FeatureSpec.resolve("nope")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError, match="not valid JSON"):
        FeatureSpec.resolve(tmp_path / "bad.json")
    (tmp_path / "latin1.json").write_bytes(b'{"layout": "\xe9"}')
    with pytest.raises(SpecError, match="not valid UTF-8"):
        FeatureSpec.resolve(tmp_path / "latin1.json")
