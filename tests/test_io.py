"""Tests of signrt.io: clip readers and writers, dataset indexes, real Kaggle clips.

The real clips under tests/data/asl-signs-sample are a few files of the Kaggle ASL Signs data
(Google, CC BY 4.0; see ATTRIBUTION.md there).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import signrt
from signrt import DataError, FeatureSpec, ShapeError, preprocess_reference
from signrt.errors import DependencyError, OptionError
from signrt.io import (
    ClipRecord,
    index_clip_folder,
    index_dataset,
    index_kaggle,
    read_clip,
    read_npy,
    read_npz,
    read_parquet,
    read_pose,
    write_clip,
    write_npy,
    write_npz,
    write_parquet,
    write_pose,
)

DATA = Path(__file__).parent / "data" / "asl-signs-sample"
FACE_MISSING = DATA / "train_landmark_files/30680/30136412.parquet"  # no face, no left hand
HANDS = DATA / "train_landmark_files/16069/2455094920.parquet"  # left hand lost in 3 frames
PARTS = {"face": (0, 468), "left_hand": (468, 489), "pose": (489, 522), "right_hand": (522, 543)}


def real_clips() -> list[Path]:
    return sorted(DATA.glob("train_landmark_files/*/*.parquet"))


def synthetic_clip(t: int, seed: int = 0) -> np.ndarray:
    """A clip with values in (0, 1) and whole parts missing in some frames."""
    rng = np.random.default_rng(seed)
    clip = rng.uniform(0.05, 0.95, (t, 543, 3)).astype(np.float32)
    clip[::2, 468:489] = np.nan  # left hand missing in every other frame
    clip[1::3, 522:543] = np.nan
    if t > 1:
        clip[1, 0:468] = np.nan  # face lost once
    return clip


def kaggle_rows(path: Path) -> dict[str, list[object]]:
    return pq.read_table(path).to_pydict()  # type: ignore[no-any-return]


def write_rows(path: Path, rows: dict[str, list[object]], schema: pa.Schema | None = None) -> Path:
    pq.write_table(pa.table(rows, schema=schema), path)
    return path


def take_rows(rows: dict[str, list[object]], keep: list[int]) -> dict[str, list[object]]:
    return {k: [v[i] for i in keep] for k, v in rows.items()}


def message_of(exc: pytest.ExceptionInfo[BaseException]) -> str:
    return str(exc.value)


# ============================================================================ Kaggle parquet


@pytest.mark.parametrize("path", real_clips(), ids=lambda p: p.stem)
def test_real_clip_shape_and_values(path: Path) -> None:
    clip = read_parquet(path)
    rows = kaggle_rows(path)
    frames = sorted(set(rows["frame"]))
    assert clip.shape == (len(frames), 543, 3) and clip.dtype == np.float32
    assert clip.flags.c_contiguous
    # the competition files list rows frame by frame in layout order: an independent oracle
    order = np.lexsort((np.arange(len(rows["frame"])), rows["frame"]))
    xyz = np.array([rows[c] for c in "xyz"], dtype=np.float64).T[order].reshape(-1, 543, 3)
    np.testing.assert_array_equal(clip, xyz.astype(np.float32))
    # a part is either wholly present or wholly missing (NaN in x, y and z) in each frame
    for lo, hi in PARTS.values():
        part = np.isnan(clip[:, lo:hi])
        assert np.all(part.all(axis=(1, 2)) | ~part.any(axis=(1, 2)))


def test_real_clip_missing_parts_are_nan() -> None:
    clip = read_clip(FACE_MISSING)
    assert clip.shape == (6, 543, 3)
    assert np.isnan(clip[:, 0:468]).all()  # face not detected in this clip
    assert np.isnan(clip[:, 468:489]).all()  # nor the left hand
    assert np.isfinite(clip[:, 489:522]).all()  # pose always present
    right_missing = np.isnan(clip[:, 522:543]).all(axis=(1, 2))
    assert right_missing.sum() == 3

    clip = read_clip(HANDS)
    left_missing = np.isnan(clip[:, 468:489]).all(axis=(1, 2))
    assert clip.shape[0] == 29 and left_missing.sum() == 3


def test_rows_are_placed_by_type_and_index_not_by_order(tmp_path: Path) -> None:
    rows = kaggle_rows(FACE_MISSING)
    rng = np.random.default_rng(0)
    shuffled = take_rows(rows, rng.permutation(len(rows["frame"])).tolist())
    out = write_rows(tmp_path / "shuffled.parquet", shuffled)
    np.testing.assert_array_equal(read_parquet(out), read_parquet(FACE_MISSING))


def test_frames_are_sorted_by_frame_number(tmp_path: Path) -> None:
    clip = synthetic_clip(3)
    path = tmp_path / "c.parquet"
    write_parquet(path, clip, frames=[40, 7, 12])
    np.testing.assert_array_equal(read_parquet(path), clip[[1, 2, 0]])


def test_newer_mediapipe_553_rows(tmp_path: Path) -> None:
    clip = synthetic_clip(2)
    rows: dict[str, list[object]] = {
        c: [] for c in ("frame", "type", "landmark_index", "x", "y", "z")
    }
    sizes = {"face": 478, "left_hand": 21, "pose": 33, "right_hand": 21}
    for f in range(2):
        for part, n in sizes.items():
            lo = PARTS[part][0]
            for i in range(n):
                value = (9.0, 9.0, 9.0) if i >= 468 else clip[f, lo + i]  # irises: dropped
                rows["frame"].append(f)
                rows["type"].append(part)
                rows["landmark_index"].append(i)
                for c, v in zip("xyz", value, strict=True):
                    rows[c].append(float(v))
    path = write_rows(tmp_path / "553.parquet", rows)
    out = read_parquet(path)
    assert out.shape == (2, 543, 3)
    np.testing.assert_array_equal(out, clip)


def test_parquet_round_trip_and_schema(tmp_path: Path) -> None:
    clip = synthetic_clip(5)
    path = tmp_path / "clip.parquet"
    write_parquet(path, clip)
    np.testing.assert_array_equal(read_parquet(path), clip)
    table = pq.read_table(path)
    assert table.schema.names == ["frame", "row_id", "type", "landmark_index", "x", "y", "z"]
    assert table.schema.field("frame").type == pa.int16()
    assert table.schema.field("landmark_index").type == pa.int16()
    assert table.schema.field("type").type == pa.string()
    assert table.schema.field("x").type == pa.float64()
    assert table.num_rows == 5 * 543
    rows = table.slice(543 + 470, 1).to_pylist()[0]  # frame 1, left hand landmark 2
    assert rows["row_id"] == "1-left_hand-2"
    assert (rows["frame"], rows["type"], rows["landmark_index"]) == (1, "left_hand", 2)
    assert table.column("x").null_count == int(np.isnan(clip[..., 0]).sum())  # NaN -> null
    assert [p.name for p in tmp_path.iterdir()] == ["clip.parquet"]  # no temp file left


def test_parquet_round_trip_of_real_clip(tmp_path: Path) -> None:
    clip = read_clip(HANDS)
    write_clip(tmp_path / "copy.parquet", clip)
    np.testing.assert_array_equal(read_clip(tmp_path / "copy.parquet"), clip)


def test_parquet_empty_clip(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    write_parquet(path, np.zeros((0, 543, 3), np.float32))
    out = read_parquet(path)
    assert out.shape == (0, 543, 3) and out.dtype == np.float32


def test_parquet_large_frame_numbers(tmp_path: Path) -> None:
    clip = synthetic_clip(2)
    path = tmp_path / "c.parquet"
    write_parquet(path, clip, frames=[70_000, 5])
    assert pq.read_schema(path).field("frame").type == pa.int32()
    np.testing.assert_array_equal(read_parquet(path), clip[[1, 0]])


def test_parquet_writer_checks_frames(tmp_path: Path) -> None:
    clip = synthetic_clip(3)
    with pytest.raises(ShapeError, match="expected 3 frame numbers, got 2"):
        write_parquet(tmp_path / "a.parquet", clip, frames=[1, 2])
    with pytest.raises(DataError, match="must all be different"):
        write_parquet(tmp_path / "a.parquet", clip, frames=[1, 2, 1])
    assert list(tmp_path.iterdir()) == []


def test_parquet_accepts_dictionary_types_and_float32(tmp_path: Path) -> None:
    rows = kaggle_rows(FACE_MISSING)
    table = pa.table(rows)
    table = table.set_column(2, "type", table.column("type").dictionary_encode())
    table = table.set_column(4, "x", table.column("x").cast(pa.float32()))
    pq.write_table(table, tmp_path / "dict.parquet")
    np.testing.assert_array_equal(read_parquet(tmp_path / "dict.parquet"), read_clip(FACE_MISSING))


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.parquet"
    first = synthetic_clip(3)
    write_parquet(path, first)

    def broken_write(table: pa.Table, where: object, **kwargs: object) -> None:
        assert hasattr(where, "write")
        where.write(b"PAR1 partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_parquet(path, synthetic_clip(4, seed=1))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_parquet(path), first)  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["clip.parquet"]  # temp file removed
    write_parquet(path, synthetic_clip(4, seed=1))  # and a later write replaces it
    assert read_parquet(path).shape[0] == 4


# ---------------------------------------------------------------- malformed parquet files


def _drop_column(rows: dict[str, list[object]], name: str) -> dict[str, list[object]]:
    return {k: v for k, v in rows.items() if k != name}


def _set(rows: dict[str, list[object]], col: str, i: int, value: object) -> dict[str, list[object]]:
    out = {k: list(v) for k, v in rows.items()}
    out[col][i] = value
    return out


def _bad_parquet_cases() -> list[tuple[str, object, str]]:
    """(case id, how to build the file from the rows of a real clip, expected message)."""
    return [
        ("missing x", lambda r: _drop_column(r, "x"), r"missing column\(s\) x"),
        ("missing type", lambda r: _drop_column(r, "type"), r"missing column\(s\) type"),
        ("short by one row", lambda r: take_rows(r, list(range(len(r["frame"]) - 1))),
         r"3257 rows is not a multiple of 543"),
        ("extra row", lambda r: take_rows(r, [*range(len(r["frame"])), 0]),
         r"3259 rows is not a multiple of 543"),
        ("duplicated row", lambda r: take_rows(r, [0, *range(1, 3257), 5]),
         r"duplicated rows: 2 rows for frame 15, type face, landmark_index 5"),
        ("frame short of rows",
         lambda r: take_rows(r, [i for i in range(3258) if i != 600 and not 2 * 543 < i < 3 * 543]),
         r"frame 16 has 542 rows, expected 543"),
        ("unknown type", lambda r: _set(r, "type", 10, "hand"),
         r"unknown landmark type 'hand' in column 'type'"),
        ("index out of range", lambda r: _set(r, "landmark_index", 470, 21),
         r"landmark_index 21 is out of range for type 'left_hand' \(0-20\) at row 470"),
        ("negative index", lambda r: _set(r, "landmark_index", 0, -1),
         r"landmark_index -1 is out of range for type 'face'"),
        ("null frame", lambda r: _set(r, "frame", 3, None), r"column 'frame' has 1 null value"),
        ("null type", lambda r: _set(r, "type", 3, None), r"column 'type' has 1 null value"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "message"),
    [pytest.param(make, msg, id=name) for name, make, msg in _bad_parquet_cases()],
)
def test_malformed_rows_raise_data_error(tmp_path: Path, make: object, message: str) -> None:
    assert callable(make)
    path = write_rows(tmp_path / "bad.parquet", make(kaggle_rows(FACE_MISSING)))
    with pytest.raises(DataError) as exc:
        read_clip(path)
    assert str(path) in message_of(exc)
    assert re.search(message, message_of(exc)), message_of(exc)


@pytest.mark.parametrize(
    ("column", "arrow_type", "message"),
    [
        ("x", pa.string(), r"column 'x' has type string, expected a floating-point type"),
        ("z", pa.int64(), r"column 'z' has type int64, expected a floating-point type"),
        ("frame", pa.float64(), r"column 'frame' has type double, expected an integer type"),
        ("landmark_index", pa.string(), r"column 'landmark_index' has type string, expected an"),
        ("type", pa.int32(), r"column 'type' has type int32, expected strings"),
    ],
)
def test_wrong_column_types_raise_data_error(
    tmp_path: Path, column: str, arrow_type: pa.DataType, message: str
) -> None:
    rows = kaggle_rows(FACE_MISSING)
    if column == "type":
        rows["type"] = [len(str(v)) for v in rows["type"]]
    elif arrow_type == pa.string():
        rows[column] = [str(v) for v in rows[column]]
    elif arrow_type == pa.int64():
        rows[column] = [0 if v is None else int(v) for v in rows[column]]  # type: ignore[call-overload]
    else:
        rows[column] = [float(v) for v in rows[column]]  # type: ignore[arg-type]
    schema = pa.table(rows).schema
    schema = schema.set(schema.get_field_index(column), pa.field(column, arrow_type))
    path = write_rows(tmp_path / "bad.parquet", rows, schema)
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*" + message):
        read_parquet(path)


def _corrupt(raw: bytes, how: str) -> bytes:
    if how == "truncated":
        return raw[: len(raw) // 2]
    if how == "truncated, footer kept":
        return raw[: len(raw) // 2] + raw[-3000:]
    if how == "page header zeroed":
        return raw[:4] + bytes(64) + raw[68:]
    if how == "footer zeroed":
        return raw[:-200] + bytes(192) + raw[-8:]
    if how == "empty":
        return b""
    if how == "csv":
        return b"frame,row_id,type,landmark_index,x,y,z\n0,0-face-0,face,0,0.5,0.5,0\n"
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "not a readable parquet file"),
        ("truncated, footer kept", "not a readable parquet file"),
        ("page header zeroed", "corrupt or truncated parquet data"),
        ("footer zeroed", "not a readable parquet file"),
        ("empty", "not a readable parquet file"),
        ("csv", "not a readable parquet file"),
    ],
)
def test_corrupt_parquet_raises_data_error(tmp_path: Path, how: str, message: str) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(_corrupt(FACE_MISSING.read_bytes(), how))
    with pytest.raises(DataError) as exc:
        read_clip(path)
    text = message_of(exc)
    assert text.startswith(f"{path}: {message} (") and "\n" not in text
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # no pyarrow trace


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such clip file"):
        read_clip(tmp_path / "absent.parquet")
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(IsADirectoryError):
        read_clip(tmp_path / "dir.npy")


# ============================================================================ npy / npz


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_array_round_trip(tmp_path: Path, suffix: str) -> None:
    clip = synthetic_clip(7)
    path = tmp_path / f"clip{suffix}"
    write_clip(path, clip)
    out = read_clip(path)
    assert out.dtype == np.float32 and out.shape == (7, 543, 3)
    np.testing.assert_array_equal(out, clip)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_npz_uncompressed_and_key(tmp_path: Path) -> None:
    clip = synthetic_clip(2)
    write_npz(tmp_path / "a.npz", clip, compressed=False)
    with np.load(tmp_path / "a.npz") as archive:
        assert archive.files == ["landmarks"]
    np.testing.assert_array_equal(read_npz(tmp_path / "a.npz"), clip)
    np.testing.assert_array_equal(read_npz(tmp_path / "a.npz", key="landmarks"), clip)


def test_npz_landmarks_key_or_only_array(tmp_path: Path) -> None:
    clip = synthetic_clip(2)
    np.savez(tmp_path / "two.npz", labels=np.arange(3), landmarks=clip)
    np.testing.assert_array_equal(read_npz(tmp_path / "two.npz"), clip)
    np.savez(tmp_path / "one.npz", poses=clip)
    np.testing.assert_array_equal(read_npz(tmp_path / "one.npz"), clip)
    np.testing.assert_array_equal(read_npz(tmp_path / "two.npz", key="landmarks"), clip)


def test_npy_other_layouts_are_adapted(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x75 = rng.random((4, 75, 3))
    np.save(tmp_path / "p75.npy", x75)
    out = read_npy(tmp_path / "p75.npy")
    assert out.shape == (4, 543, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 489:522], x75[:, :33], rtol=1e-6)
    assert np.isnan(out[:, :468]).all()

    x553 = rng.random((3, 553, 3)).astype(np.float32)
    np.save(tmp_path / "h553.npy", x553)
    np.testing.assert_array_equal(read_npy(tmp_path / "h553.npy")[:, 468:], x553[:, 478:])

    flat = rng.random((5, 1662)) + 0.1
    flat[:, 1536:1599] = 0.0  # no left hand
    np.savez(tmp_path / "flat.npz", landmarks=flat)
    out = read_npz(tmp_path / "flat.npz")
    assert out.shape == (5, 543, 3) and np.isnan(out[:, 468:489]).all()

    np.save(tmp_path / "frame.npy", rng.random((543, 3)).astype(np.float16))
    assert read_npy(tmp_path / "frame.npy").shape == (1, 543, 3)
    np.save(tmp_path / "ints.npy", np.ones((2, 543, 3), dtype=np.int32))
    assert read_npy(tmp_path / "ints.npy").dtype == np.float32


def test_partially_missing_points_become_all_nan(tmp_path: Path) -> None:
    clip = synthetic_clip(2)
    clip[0, 17, 2] = np.nan  # only z missing
    clip[1, 500, 0] = np.inf
    original = clip.copy()
    write_npy(tmp_path / "a.npy", clip)
    np.testing.assert_array_equal(clip, original)  # the writer leaves its input alone
    out = read_npy(tmp_path / "a.npy")
    assert np.isnan(out[0, 17]).all() and np.isnan(out[1, 500]).all()
    assert np.isfinite(out[0, 16]).all()


def _bad_array_files(tmp_path: Path) -> list[tuple[Path, str]]:
    clip = synthetic_clip(3)
    cases: list[tuple[Path, str]] = []

    def add(name: str, message: str) -> Path:
        path = tmp_path / name
        cases.append((path, message))
        return path

    np.save(add("objects.npy", r"unreadable \.npy array \(.*pickle"),
            np.array([{"a": 1}], dtype=object), allow_pickle=True)  # fmt: skip
    raw = (tmp_path / "objects.npy").read_bytes()
    np.save(tmp_path / "good.npy", clip)
    good = (tmp_path / "good.npy").read_bytes()
    add("truncated.npy", r"unreadable \.npy array").write_bytes(good[: len(good) // 2])
    add("header-only.npy", r"unreadable \.npy array").write_bytes(good[:40])
    add("text.npy", r"not a \.npy file").write_bytes(b"0.1 0.2 0.3\n")
    add("zip.npy", r"not a \.npy file").write_bytes(b"PK\x03\x04" + raw)
    np.save(add("shape.npy", r"array: unknown landmark layout with shape \(3, 10, 3\)"),
            np.zeros((3, 10, 3)))  # fmt: skip
    np.save(add("bool.npy", r"array has dtype bool, expected real numbers"),
            np.zeros((3, 543, 3), dtype=bool))  # fmt: skip
    np.save(add("complex.npy", r"dtype complex128"), np.zeros((3, 543, 3), dtype=complex))
    np.save(add("text-array.npy", r"dtype <U1"), np.array(["a", "b"]))
    add("text.npz", r"not a \.npz file \(not a zip archive\)").write_bytes(b"hello")
    np.savez(tmp_path / "good.npz", landmarks=clip)
    zipped = (tmp_path / "good.npz").read_bytes()
    add("truncated.npz", r"unreadable \.npz archive").write_bytes(zipped[: len(zipped) // 2])
    np.savez(add("several.npz", r"cannot choose the clip array: no 'landmarks' key and 2 arrays"),
             a=clip, b=clip)  # fmt: skip
    np.savez(add("empty.npz", r"no 'landmarks' key and 0 arrays \(empty archive\)"))
    np.savez(add("objects.npz", r"unreadable \.npz archive \(.*pickle"),
             landmarks=np.array([None, 1], dtype=object))  # fmt: skip
    np.savez(add("shape.npz", r"array 'x': unknown landmark layout with shape \(2, 7\)"),
             x=np.zeros((2, 7)))  # fmt: skip
    return cases


def test_malformed_arrays_raise_data_error(tmp_path: Path) -> None:
    cases = _bad_array_files(tmp_path)
    assert len(cases) == 15
    for path, message in cases:
        with pytest.raises(DataError) as exc:
            read_clip(path)
        text = message_of(exc)
        assert text.startswith(f"{path}: "), text
        assert re.search(message, text), (path.name, text)


def test_npz_missing_key(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", landmarks=synthetic_clip(2))
    with pytest.raises(DataError, match=r"a\.npz: no array named 'pose' \(arrays: landmarks\)"):
        read_npz(tmp_path / "a.npz", key="pose")


def test_writers_reject_unknown_layouts(tmp_path: Path) -> None:
    for suffix in (".npy", ".npz", ".parquet", ".pose"):
        with pytest.raises(ShapeError, match=r"unknown landmark layout with shape \(3, 10, 3\)"):
            write_clip(tmp_path / f"a{suffix}", np.zeros((3, 10, 3)))
    assert list(tmp_path.iterdir()) == []


def test_writers_adapt_other_layouts(tmp_path: Path) -> None:
    x75 = np.random.default_rng(5).random((2, 75, 3)).astype(np.float32)
    write_npy(tmp_path / "a.npy", x75)
    assert np.load(tmp_path / "a.npy").shape == (2, 543, 3)


# ============================================================================ .pose


def test_pose_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pose_format")
    clip = synthetic_clip(6)
    path = tmp_path / "clip.pose"
    write_clip(path, clip, fps=25.0)
    out = read_clip(path)
    assert out.dtype == np.float32 and out.shape == (6, 543, 3)
    np.testing.assert_array_equal(out, clip)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.pose"]


def test_pose_file_layout_written(tmp_path: Path) -> None:
    pose_format = pytest.importorskip("pose_format")
    clip = synthetic_clip(4)
    path = tmp_path / "clip.pose"
    write_pose(path, clip, fps=12.5)
    pose = pose_format.Pose.read(path.read_bytes())
    names = [c.name for c in pose.header.components]
    assert names == [
        "POSE_LANDMARKS",
        "FACE_LANDMARKS",
        "LEFT_HAND_LANDMARKS",
        "RIGHT_HAND_LANDMARKS",
    ]
    assert [len(c.points) for c in pose.header.components] == [33, 468, 21, 21]
    assert pose.body.fps == pytest.approx(12.5)
    assert pose.body.data.shape == (4, 1, 543, 3)
    header = pose.header
    shoulder = header.get_point_index("POSE_LANDMARKS", "LEFT_SHOULDER")
    np.testing.assert_array_equal(pose.body.data.data[:, 0, shoulder], clip[:, 500])
    wrist = header.get_point_index("RIGHT_HAND_LANDMARKS", "WRIST")
    np.testing.assert_array_equal(pose.body.data.data[:, 0, wrist][[0, 2, 3]], clip[[0, 2, 3], 522])
    # confidence 0 exactly where the clip has NaN
    left = header.get_point_index("LEFT_HAND_LANDMARKS", "WRIST")
    np.testing.assert_array_equal(pose.body.confidence[:, 0, left], [0, 1, 0, 1])
    assert pose.body.confidence[1, 0, header.get_point_index("FACE_LANDMARKS", "17")] == 0


def test_pose_pixel_dimensions(tmp_path: Path) -> None:
    pose_format = pytest.importorskip("pose_format")
    clip = synthetic_clip(2)
    path = tmp_path / "px.pose"
    write_pose(path, clip, width=640, height=480)
    pose = pose_format.Pose.read(path.read_bytes())
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (640, 480)
    nose = pose.header.get_point_index("POSE_LANDMARKS", "NOSE")
    np.testing.assert_allclose(
        pose.body.data.data[:, 0, nose], clip[:, 489] * [640, 480, 1], rtol=1e-6
    )
    np.testing.assert_allclose(read_pose(path), clip, rtol=1e-6, equal_nan=True)


def _holistic_pose_file(
    path: Path,
    frames: int = 3,
    *,
    face_points: int = 478,
    component_order: tuple[str, ...] = (
        "POSE_LANDMARKS",
        "FACE_LANDMARKS",
        "LEFT_HAND_LANDMARKS",
        "RIGHT_HAND_LANDMARKS",
        "POSE_WORLD_LANDMARKS",
    ),
    point_format: str = "XYZC",
    width: int = 1000,
    height: int = 500,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Write a .pose file the way pose-format's MediaPipe estimator does (pixel units)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    from signrt.io.pose import HAND_POINTS, POSE_POINTS

    points = {
        "POSE_LANDMARKS": list(POSE_POINTS),
        "FACE_LANDMARKS": [str(i) for i in range(face_points)],
        "LEFT_HAND_LANDMARKS": list(HAND_POINTS),
        "RIGHT_HAND_LANDMARKS": list(HAND_POINTS),
        "POSE_WORLD_LANDMARKS": list(POSE_POINTS),
    }
    rng = np.random.default_rng(6)
    dims = len(point_format) - 1
    values = {c: rng.uniform(0.1, 0.9, (frames, len(points[c]), dims)) for c in component_order}
    conf = {c: np.ones((frames, len(points[c]))) for c in component_order}
    if "LEFT_HAND_LANDMARKS" in conf:
        conf["LEFT_HAND_LANDMARKS"][1] = 0.0  # hand not detected in frame 1
    if "POSE_LANDMARKS" in conf:
        conf["POSE_LANDMARKS"][:, 25:] = 0.0  # legs not detected
    components = [
        PoseHeaderComponent(c, points[c], [], [(255, 0, 0)], point_format) for c in component_order
    ]
    header = PoseHeader(0.2, PoseHeaderDimensions(width, height, 0), components)
    scale = np.array([width, height, 1.0][:dims])
    data = np.concatenate([values[c] * scale for c in component_order], axis=1)
    confidence = np.concatenate([conf[c] for c in component_order], axis=1)
    body = NumPyPoseBody(30.0, data[:, None].astype(np.float32), confidence[:, None])
    with open(path, "wb") as fh:
        Pose(header, body).write(fh)
    return values, conf


def test_pose_reads_pose_format_holistic_by_name(tmp_path: Path) -> None:
    pytest.importorskip("pose_format")
    path = tmp_path / "holistic.pose"
    values, _ = _holistic_pose_file(path)
    clip = read_pose(path)
    assert clip.shape == (3, 543, 3)
    tol = {"rtol": 1e-5}
    np.testing.assert_allclose(
        clip[:, 0:468], values["FACE_LANDMARKS"][:, :468], **tol
    )  # no irises
    np.testing.assert_allclose(clip[:, 522:543], values["RIGHT_HAND_LANDMARKS"], **tol)
    np.testing.assert_allclose(clip[[0, 2], 468:489], values["LEFT_HAND_LANDMARKS"][[0, 2]], **tol)
    assert np.isnan(clip[1, 468:489]).all()  # confidence 0 -> NaN
    np.testing.assert_allclose(clip[:, 489:514], values["POSE_LANDMARKS"][:, :25], **tol)
    assert np.isnan(clip[:, 514:522]).all()
    # the world landmarks are not mistaken for the image landmarks
    assert not np.allclose(clip[:, 489:514], values["POSE_WORLD_LANDMARKS"][:, :25])


def test_pose_components_in_any_order_and_missing_face(tmp_path: Path) -> None:
    pytest.importorskip("pose_format")
    path = tmp_path / "hands-first.pose"
    order = ("RIGHT_HAND_LANDMARKS", "POSE_LANDMARKS", "LEFT_HAND_LANDMARKS")
    values, _ = _holistic_pose_file(path, component_order=order, width=1, height=1)
    clip = read_pose(path)
    assert np.isnan(clip[:, 0:468]).all()
    np.testing.assert_allclose(clip[:, 522:543], values["RIGHT_HAND_LANDMARKS"], rtol=1e-6)
    np.testing.assert_allclose(clip[:, 500], values["POSE_LANDMARKS"][:, 11], rtol=1e-6)


def test_pose_2d_file_gets_zero_depth(tmp_path: Path) -> None:
    pytest.importorskip("pose_format")
    path = tmp_path / "2d.pose"
    values, _ = _holistic_pose_file(path, point_format="XYC", face_points=468)
    clip = read_pose(path)
    np.testing.assert_allclose(clip[:, 522:543, :2], values["RIGHT_HAND_LANDMARKS"], rtol=1e-5)
    assert (clip[:, 522:543, 2] == 0).all()


def test_malformed_pose_files_raise_data_error(tmp_path: Path) -> None:
    pytest.importorskip("pose_format")
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    good = tmp_path / "good.pose"
    write_pose(good, synthetic_clip(4))
    raw = good.read_bytes()
    cases = {
        "truncated.pose": (raw[: len(raw) - 100], "not a readable .pose file"),
        "header-cut.pose": (raw[:30], "not a readable .pose file"),
        "text.pose": (b"this is not a pose file at all", "not a readable .pose file"),
        "empty.pose": (b"", "not a readable .pose file"),
    }
    for name, (content, _) in cases.items():
        (tmp_path / name).write_bytes(content)

    def write(name: str, components: list[PoseHeaderComponent]) -> None:
        n = sum(len(c.points) for c in components)
        header = PoseHeader(0.2, PoseHeaderDimensions(1, 1, 0), components)
        body = NumPyPoseBody(25.0, np.zeros((2, 1, n, 3), np.float32), np.ones((2, 1, n)))
        with open(tmp_path / name, "wb") as fh:
            Pose(header, body).write(fh)

    openpose = PoseHeaderComponent("BODY_25", ["Nose", "Neck"], [], [(0, 0, 0)], "XYZC")
    write("openpose.pose", [openpose])
    cases["openpose.pose"] = (b"", "no MediaPipe Holistic component")
    odd = PoseHeaderComponent("LEFT_HAND_LANDMARKS", ["WRIST", "ELBOW"], [], [(0, 0, 0)], "XYZC")
    write("odd-point.pose", [odd])
    cases["odd-point.pose"] = (b"", "component LEFT_HAND_LANDMARKS has an unknown point 'ELBOW'")
    face = PoseHeaderComponent("FACE_LANDMARKS", ["0", "478"], [], [(0, 0, 0)], "XYZC")
    write("face-point.pose", [face])
    cases["face-point.pose"] = (b"", "component FACE_LANDMARKS has an unknown point '478'")

    for name, (_, message) in cases.items():
        path = tmp_path / name
        with pytest.raises(DataError) as exc:
            read_clip(path)
        assert message_of(exc).startswith(f"{path}: {message}"), message_of(exc)


def test_pose_without_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pose_format" or m.startswith("pose_format.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pose_format", None)
    with pytest.raises(DependencyError, match=re.escape("pip install signrt[pose]")):
        write_clip(tmp_path / "a.pose", synthetic_clip(2))
    (tmp_path / "b.pose").write_bytes(b"x")
    with pytest.raises(DependencyError, match="needs the pose-format package"):
        read_clip(tmp_path / "b.pose")


def test_pose_writer_checks_arguments(tmp_path: Path) -> None:
    pytest.importorskip("pose_format")
    with pytest.raises(OptionError, match="fps must be a positive number"):
        write_pose(tmp_path / "a.pose", synthetic_clip(2), fps=0)
    with pytest.raises(OptionError, match="width must be between 1 and 65535"):
        write_pose(tmp_path / "a.pose", synthetic_clip(2), width=70_000)
    assert list(tmp_path.iterdir()) == []


# ============================================================================ dispatch


def test_unsupported_suffix(tmp_path: Path) -> None:
    (tmp_path / "clip.csv").write_text("x")
    with pytest.raises(DataError, match=r"clip\.csv: cannot read clips of type '\.csv'"):
        read_clip(tmp_path / "clip.csv")
    with pytest.raises(DataError, match=r"cannot write clips of type '\(no suffix\)'"):
        write_clip(tmp_path / "clip", synthetic_clip(1))


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    clip = synthetic_clip(2)
    write_clip(tmp_path / "A.NPY", clip)
    np.testing.assert_array_equal(read_clip(tmp_path / "A.NPY"), clip)
    np.testing.assert_array_equal(read_clip(str(tmp_path / "A.NPY")), clip)


def test_top_level_exports() -> None:
    assert signrt.read_clip is read_clip
    assert signrt.write_clip is write_clip
    import signrt.io as io_module

    assert set(io_module.__all__) <= set(dir(io_module))


# ============================================================================ datasets


def test_index_kaggle() -> None:
    records = index_kaggle(DATA)
    with open(DATA / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(records) == len(rows) == 6
    for record, row in zip(records, rows, strict=True):
        assert record.path.is_absolute() and record.path.is_file()
        assert record.path == (DATA / row["path"]).resolve()
        assert record.sign == row["sign"]
        assert record.participant_id == int(row["participant_id"])
        assert record.sequence_id == int(row["sequence_id"])
    assert {r.sign for r in records} == {"hello", "thankyou"}
    assert len({r.participant_id for r in records}) >= 3
    assert index_kaggle(DATA / "train.csv") == records
    assert index_dataset(DATA) == records
    assert index_dataset(DATA / "train.csv") == records


def test_index_paths_are_absolute_from_a_relative_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ds" / "hello").mkdir(parents=True)
    write_npy(tmp_path / "ds" / "hello" / "a.npy", synthetic_clip(2))
    monkeypatch.chdir(tmp_path)
    (record,) = index_dataset("ds")
    assert record.path == tmp_path / "ds" / "hello" / "a.npy"
    assert record.path.is_absolute()


def _clip_folder(root: Path) -> None:
    clip = synthetic_clip(3)
    (root / "hello" / "session2").mkdir(parents=True)
    (root / "thankyou").mkdir()
    (root / ".cache").mkdir()
    write_npy(root / "hello" / "b.npy", clip)
    write_parquet(root / "hello" / "session2" / "c.parquet", clip)
    write_npy(root / "hello" / "a.npy", clip)
    write_npz(root / "thankyou" / "d.npz", clip)
    write_npy(root / "thankyou" / ".hidden.npy", clip)
    (root / "thankyou" / "notes.txt").write_text("not a clip")
    write_npy(root / ".cache" / "x.npy", clip)
    write_npy(root / "stray.npy", clip)  # not inside a sign folder


def test_index_clip_folder(tmp_path: Path) -> None:
    _clip_folder(tmp_path)
    records = index_clip_folder(tmp_path)
    assert [(r.path.relative_to(tmp_path).as_posix(), r.sign) for r in records] == [
        ("hello/a.npy", "hello"),
        ("hello/b.npy", "hello"),
        ("hello/session2/c.parquet", "hello"),
        ("thankyou/d.npz", "thankyou"),
    ]
    assert all(r.participant_id is None and r.sequence_id is None for r in records)
    assert index_dataset(tmp_path) == records
    assert records[2].read().shape == (3, 543, 3)


def test_index_clip_folder_with_pose_clip(tmp_path: Path) -> None:
    pytest.importorskip("pose_format")
    (tmp_path / "yes").mkdir()
    write_clip(tmp_path / "yes" / "a.pose", synthetic_clip(2))
    (record,) = index_dataset(tmp_path)
    assert record == ClipRecord(path=tmp_path / "yes" / "a.pose", sign="yes")
    assert record.read().shape == (2, 543, 3)


def test_index_dataset_neither_kind(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hi")
    write_npy(tmp_path / "loose.npy", synthetic_clip(1))
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: not a dataset: neither a Kaggle")):
        index_dataset(tmp_path)
    with pytest.raises(DataError, match="dataset folder does not exist"):
        index_dataset(tmp_path / "absent")
    with pytest.raises(DataError, match="dataset folder is not a folder"):
        index_dataset(tmp_path / "loose.npy")
    with pytest.raises(DataError, match="no sign subfolders"):
        index_clip_folder(tmp_path / "docs")


def test_index_clip_folder_empty_sign(tmp_path: Path) -> None:
    (tmp_path / "hello").mkdir()
    (tmp_path / "bye").mkdir()
    write_npy(tmp_path / "hello" / "a.npy", synthetic_clip(1))
    with pytest.raises(DataError, match=r"sign folder\(s\) bye hold no clip"):
        index_dataset(tmp_path)


def _kaggle_dir(tmp_path: Path, lines: list[str], files: tuple[str, ...] = ()) -> Path:
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        write_parquet(tmp_path / rel, synthetic_clip(1))
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["path,participant_id,sequence_id", "a/1.parquet,1,1"], r"missing column\(s\) sign"),
        (["path,participant_id,sequence_id,sign", "a/1.parquet,x,1,hello"],
         r"line 2: participant_id 'x' is not an integer"),
        (["path,participant_id,sequence_id,sign", "a/1.parquet,1,,hello"],
         r"line 2: sequence_id '' is not an integer"),
        (["path,participant_id,sequence_id,sign", "a/1.parquet,1,1,"],
         r"line 2: empty path or sign"),
        (["path,participant_id,sequence_id,sign", "a/1.parquet,1,1,hi", "a/1.parquet,1,1,hi"],
         r"line 3: a/1\.parquet is listed twice"),
        (["path,participant_id,sequence_id,sign", "a/1.parquet,1,1,hi", "a/2.parquet,1,2,hi"],
         r"1 of 2 clip files are missing: .*a/2\.parquet"),
        ([], r"missing column\(s\) path, participant_id, sequence_id, sign"),
    ],
)  # fmt: skip
def test_malformed_kaggle_index(tmp_path: Path, lines: list[str], message: str) -> None:
    root = _kaggle_dir(tmp_path, lines, files=("a/1.parquet",))
    with pytest.raises(DataError) as exc:
        index_dataset(root)
    assert message_of(exc).startswith(f"{root / 'train.csv'}: ")
    assert re.search(message, message_of(exc)), message_of(exc)


def test_kaggle_index_without_file_check(tmp_path: Path) -> None:
    root = _kaggle_dir(tmp_path, ["path,participant_id,sequence_id,sign", "b/9.parquet,3,9,hi"])
    (record,) = index_kaggle(root, check_files=False)
    assert record == ClipRecord(tmp_path / "b" / "9.parquet", "hi", 3, 9)
    with pytest.raises(DataError, match=r"no train\.csv here"):
        index_kaggle(tmp_path / "b")


def test_kaggle_index_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes(b"path,participant_id,sequence_id,sign\n\xff\xfe,1,1,a\n")
    with pytest.raises(DataError, match=r"train\.csv: unreadable csv"):
        index_kaggle(tmp_path)


# ============================================================================ real data -> features


def _native_available() -> bool:
    try:
        import signrt._native  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("preset", ["islr118", "hands_pose"])
@pytest.mark.parametrize("path", real_clips(), ids=lambda p: p.stem)
def test_real_clips_to_features(path: Path, preset: str) -> None:
    spec = FeatureSpec.preset(preset)
    clip = read_clip(path)
    feats, mask = preprocess_reference(clip, spec)
    assert feats.shape == (spec.max_len, spec.num_features) and feats.dtype == np.float32
    assert mask.shape == (spec.max_len,) and mask.dtype == np.float32
    assert np.isfinite(feats).all()
    selected = clip[:, list(spec.landmarks), : spec.coords]
    nonempty = int((~np.isnan(selected)).any(axis=(1, 2)).sum())
    assert int(mask.sum()) == min(nonempty, spec.max_len)
    assert (mask[: int(mask.sum())] == 1).all() and (mask[int(mask.sum()) :] == 0).all()
    assert (feats[int(mask.sum()) :] == 0).all()


def test_real_clip_without_face_keeps_only_hand_frames() -> None:
    clip = read_clip(FACE_MISSING)  # no face, no left hand; right hand in 3 of 6 frames
    _, mask = preprocess_reference(clip, "islr118")
    assert mask.sum() == 3


@pytest.mark.skipif(not _native_available(), reason="signrt._native is not built")
@pytest.mark.parametrize("path", real_clips(), ids=lambda p: p.stem)
def test_real_clips_native_path(path: Path) -> None:
    spec = FeatureSpec.preset("islr118")
    clip = read_clip(path)
    feats, mask = signrt.preprocess(clip, spec)
    ref_feats, ref_mask = preprocess_reference(clip, spec)
    assert feats.shape == ref_feats.shape and mask.shape == ref_mask.shape
    assert np.isfinite(feats).all()
    np.testing.assert_array_equal(mask, ref_mask)
    np.testing.assert_allclose(feats, ref_feats, atol=1e-4, rtol=0)


def test_sample_data_keeps_its_attribution() -> None:
    text = (DATA / "ATTRIBUTION.md").read_text()
    assert "CC BY 4.0" in text and "Google" in text


def _finish_reference(clip: np.ndarray) -> np.ndarray:
    """finish_clip's rule written plainly: any non-finite coordinate makes the point NaN."""
    out = clip.astype(np.float32, copy=True)
    out[~np.all(np.isfinite(out), axis=2)] = np.nan
    return out


@pytest.mark.parametrize("seed", range(4))
def test_finish_clip_equals_the_plain_rule(seed: int) -> None:
    from signrt.io._files import finish_clip

    rng = np.random.default_rng(seed)
    clip = rng.uniform(-1, 1, (7, 543, 3)).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38], np.float32)
    where = rng.random(clip.shape) < 0.05
    clip[where] = rng.choice(specials, int(where.sum()))
    clip[2, 10:20] = 3e38  # finite points whose coordinate sum overflows: left as they are
    clip[3, 30] = [np.inf, -np.inf, 1.0]  # inf + -inf: NaN sum
    original = clip.copy()
    out = finish_clip(clip)
    np.testing.assert_array_equal(out, _finish_reference(clip))
    np.testing.assert_array_equal(clip, original)  # never modifies its input
    assert (out[2, 10:20] == np.float32(3e38)).all() and np.isnan(out[3, 30]).all()


def test_parquet_with_several_row_groups_and_dictionaries(tmp_path: Path) -> None:
    """Each row group has its own 'type' dictionary (in its own order); same clip."""
    rows = kaggle_rows(HANDS)
    n = len(rows["frame"])
    table = pa.table(rows)
    path = tmp_path / "groups.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        for start in range(0, n, 1000):  # groups cutting frames at arbitrary rows
            part = table.slice(start, 1000)
            if start // 1000 % 2:  # every other group lists its types in reverse order
                order = pa.array(sorted(set(part.column("type").to_pylist()), reverse=True))
                part = part.set_column(2, "type", pa.DictionaryArray.from_arrays(
                    pa.compute.index_in(part.column("type"), value_set=order), order
                ).cast(pa.string()))
            writer.write_table(part)
    assert pq.ParquetFile(path).num_row_groups > 2
    np.testing.assert_array_equal(read_parquet(path), read_clip(HANDS))
    # an unknown type in a later row group is named
    bad = dict(rows)
    bad["type"] = list(rows["type"])
    bad["type"][n - 5] = "hand"
    with pq.ParquetWriter(tmp_path / "bad.parquet", table.schema) as writer:
        for start in range(0, n, 1000):
            writer.write_table(pa.table(bad, schema=table.schema).slice(start, 1000))
    with pytest.raises(DataError, match=r"unknown landmark type 'hand' in column 'type'"):
        read_parquet(tmp_path / "bad.parquet")
