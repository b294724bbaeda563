"""FeatureSpec: presets, JSON round trip, validation errors naming the field, fingerprint."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signrt import FeatureSpec, Normalize, SpecError, layouts

PRESETS = FeatureSpec.presets()


def test_presets_listed():
    assert set(PRESETS) == {"islr118", "hands_pose", "parts4"}


def test_islr118_matches_design():
    s = FeatureSpec.preset("islr118")
    assert s.num_points == 118
    assert s.coords == 2
    assert s.motion_lags == (1, 2)
    assert s.normalize == Normalize("reference_rms", 17)
    assert s.channels == 6
    assert s.num_features == 708
    lm = set(s.landmarks)
    assert set(layouts.LIPS) <= lm and len(layouts.LIPS) == 40
    assert set(layouts.LEFT_HAND) <= lm and set(layouts.RIGHT_HAND) <= lm
    assert set(layouts.NOSE) <= lm
    assert set(layouts.LEFT_EYE) <= lm and set(layouts.RIGHT_EYE) <= lm


def test_hands_pose_has_no_face():
    s = FeatureSpec.preset("hands_pose")
    assert s.normalize.kind == "shoulders"
    assert all(layouts.part_of(i) != "face" for i in s.landmarks)
    assert 500 in s.landmarks and 501 in s.landmarks
    assert s.num_points == 25 + 42


def test_parts4_groups_contiguous_in_order():
    s = FeatureSpec.preset("parts4")
    groups = s.part_groups()
    assert list(groups) == ["pose", "face", "right_hand", "left_hand"]
    flat = [p for g in groups.values() for p in g]
    assert flat == list(range(s.num_points))
    assert len(groups["right_hand"]) == 21 and len(groups["left_hand"]) == 21


def test_part_groups_skip_empty_parts():
    assert list(FeatureSpec.preset("islr118").part_groups()) == ["face", "right_hand", "left_hand"]


@pytest.mark.parametrize("name", PRESETS)
def test_json_round_trip(name):
    s = FeatureSpec.preset(name)
    assert FeatureSpec.from_json(s.to_json()) == s
    assert FeatureSpec.from_json(s.to_json(indent=2)).fingerprint == s.fingerprint


def test_fingerprint_stable_and_sensitive():
    s = FeatureSpec.preset("islr118")
    # Pinned: a change of the canonical form breaks every stored model's cache key.
    assert s.fingerprint == "1e2cb7bed66d1c20"
    assert s.replace(max_len=32).fingerprint != s.fingerprint
    assert s.replace(nan_fill=0).fingerprint == s.fingerprint  # 0 and 0.0 are the same value
    reordered = json.dumps(dict(reversed(list(s.to_dict().items()))))
    assert FeatureSpec.from_json(reordered).fingerprint == s.fingerprint


def test_replace_validates():
    with pytest.raises(SpecError) as e:
        FeatureSpec.preset("islr118").replace(max_len=0)
    assert e.value.field == "max_len"


def test_preset_with_changes():
    s = FeatureSpec.preset("islr118", max_len=32, fit="resample")
    assert (s.max_len, s.fit) == (32, "resample")


def test_unknown_preset():
    with pytest.raises(SpecError, match=r"unknown preset 'nope'.*islr118"):
        FeatureSpec.preset("nope")


def _doc(**changes):
    d = FeatureSpec.preset("islr118").to_dict()
    for k, v in changes.items():
        if v is _DELETE:
            del d[k]
        else:
            d[k] = v
    return d


_DELETE = object()

#: (changes, field, message fragment). The same table drives the native-side test.
BAD_SPECS = [
    ({"extra": 1}, "extra", "unknown key"),
    ({"fit": _DELETE}, "fit", "missing key"),
    ({"version": 2}, "version", "unsupported spec version 2"),
    ({"version": "1"}, "version", "must be an integer"),
    ({"layout": "holistic-553"}, "layout", "unknown layout"),
    ({"landmarks": []}, "landmarks", "empty"),
    ({"landmarks": [0, 543]}, "landmarks", "index 543 is outside"),
    ({"landmarks": [-1]}, "landmarks", "index -1 is outside"),
    ({"landmarks": [3, 5, 3]}, "landmarks", "index 3 appears twice"),
    ({"landmarks": [1.5]}, "landmarks", "must be an integer"),
    ({"landmarks": [True]}, "landmarks", "must be an integer"),
    ({"landmarks": "0,1"}, "landmarks", "list of integers"),
    ({"coords": 4}, "coords", "must be 2"),
    ({"coords": True}, "coords", "must be an integer"),
    ({"normalize": "reference_rms"}, "normalize", "must be an object"),
    ({"normalize": {"kind": "zscore"}}, "normalize.kind", "unknown normalisation"),
    ({"normalize": {}}, "normalize.kind", "missing key"),
    ({"normalize": {"kind": "reference_rms"}}, "normalize.reference", "needs a reference"),
    ({"normalize": {"kind": "reference_rms", "reference": 600}}, "normalize.reference", "outside"),
    ({"normalize": {"kind": "none", "reference": 17}}, "normalize.reference", "only reference_rms"),
    ({"normalize": {"kind": "none", "scale": 2}}, "normalize.scale", "unknown key"),
    ({"max_len": 0}, "max_len", "between 1 and"),
    ({"max_len": 5000}, "max_len", "between 1 and"),
    ({"max_len": 64.0}, "max_len", "must be an integer"),
    ({"fit": "pad"}, "fit", "must be one of"),
    ({"fit": 1}, "fit", "must be a string"),
    ({"motion_lags": [2, 1]}, "motion_lags", "strictly increasing"),
    ({"motion_lags": [0]}, "motion_lags", "strictly increasing"),
    ({"motion_lags": [1, 1]}, "motion_lags", "strictly increasing"),
    ({"motion_lags": [64]}, "motion_lags", "smaller than max_len"),
    ({"motion_lags": ["1"]}, "motion_lags", "must be an integer"),
    ({"drop_empty_frames": 1}, "drop_empty_frames", "true or false"),
    ({"nan_fill": "0"}, "nan_fill", "must be a number"),
    ({"nan_fill": float("nan")}, "nan_fill", "finite"),
]


@pytest.mark.parametrize(("changes", "field", "fragment"), BAD_SPECS)
def test_bad_spec_names_field(changes, field, fragment):
    with pytest.raises(SpecError) as e:
        FeatureSpec.from_dict(_doc(**changes))
    assert e.value.field == field
    assert fragment in str(e.value)
    assert isinstance(e.value, ValueError)


def test_bad_json_text():
    with pytest.raises(SpecError, match="not valid JSON"):
        FeatureSpec.from_json("{not json")
    with pytest.raises(SpecError, match="must be a JSON object"):
        FeatureSpec.from_json("[1, 2]")


def test_direct_construction_validates():
    with pytest.raises(SpecError) as e:
        FeatureSpec(landmarks=(0, 0))
    assert e.value.field == "landmarks"
    with pytest.raises(SpecError) as e:
        FeatureSpec(landmarks=(0,), normalize=Normalize("shoulders", 17))
    assert e.value.field == "normalize.reference"


def test_spec_is_hashable_and_frozen():
    s = FeatureSpec.preset("islr118")
    assert hash(s) == hash(FeatureSpec.from_json(s.to_json()))
    with pytest.raises(AttributeError):
        s.max_len = 3  # type: ignore[misc]


@settings(max_examples=100, deadline=None)
@given(
    landmarks=st.lists(st.integers(0, 542), min_size=1, max_size=60, unique=True),
    coords=st.sampled_from([2, 3]),
    max_len=st.integers(1, 200),
    fit=st.sampled_from(["truncate", "resample"]),
    lags=st.lists(st.integers(1, 10), max_size=3, unique=True),
    kind=st.sampled_from(["reference_rms", "shoulders", "none"]),
    drop=st.booleans(),
    fill=st.floats(-10, 10, allow_nan=False),
)
def test_round_trip_property(landmarks, coords, max_len, fit, lags, kind, drop, fill):
    lags = sorted(k for k in lags if k < max_len)
    norm = Normalize(kind, 17 if kind == "reference_rms" else None)
    s = FeatureSpec(
        landmarks=tuple(landmarks), coords=coords, normalize=norm, max_len=max_len, fit=fit,
        motion_lags=tuple(lags), drop_empty_frames=drop, nan_fill=fill,
    )
    back = FeatureSpec.from_json(s.to_json())
    assert back == s
    assert back.fingerprint == s.fingerprint
    assert s.num_features == len(landmarks) * coords * (1 + len(lags))


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
    with pytest.raises(SpecError, match="unknown preset 'nope'"):
        FeatureSpec.resolve("nope")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError, match="not valid JSON"):
        FeatureSpec.resolve(tmp_path / "bad.json")
