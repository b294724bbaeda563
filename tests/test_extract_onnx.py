"""The onnx Holistic landmarker: graph pieces, real media, tracking, errors, MediaPipe parity.

Media: short excerpts in tests/data/media (see ATTRIBUTION.md there).
"""

from __future__ import annotations

import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signrt.extract import _holistic_ops as ops
from signrt.extract._holistic_ops import Rect
from signrt.extract.extractor import ExtractorError, create_extractor
from signrt.layouts import FACE, LEFT_HAND, POSE, RIGHT_HAND

pytestmark = pytest.mark.timeout(300)

MEDIA = Path(__file__).parent / "data" / "media"
PARTS = {"face": FACE, "left_hand": LEFT_HAND, "pose": POSE, "right_hand": RIGHT_HAND}


# ----------------------------------------------------------------------------- graph pieces
def test_anchor_counts_match_the_models() -> None:
    assert ops.ssd_anchors(224, (8, 16, 32, 32, 32)).shape == (2254, 2)
    anchors = ops.ssd_anchors(128, (8, 16, 16, 16))
    assert anchors.shape == (896, 2)
    # the first cell's two anchors sit at the centre of the 16x16 grid's first cell
    np.testing.assert_allclose(anchors[:2], [[0.5 / 16, 0.5 / 16]] * 2)
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_weighted_nms_merges_overlaps_by_score() -> None:
    boxes = np.array(
        [[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.7, 0.7, 0.9, 0.9]], np.float32
    )
    kps = np.zeros((3, 1, 2), np.float32)
    kps[:, 0, 0] = [0.2, 0.4, 0.8]
    det = ops.Detections(boxes, kps, np.array([0.9, 0.6, 0.8], np.float32))
    out = ops.weighted_nms(det, 0.3)
    assert len(out) == 2
    np.testing.assert_allclose(out.scores, [0.9, 0.8])
    np.testing.assert_allclose(out.boxes[0, 0], (0.1 * 0.9 + 0.12 * 0.6) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(out.keypoints[0, 0, 0], (0.2 * 0.9 + 0.4 * 0.6) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(out.boxes[1], boxes[2])


@settings(max_examples=50, deadline=None)
@given(st.floats(-50.0, 50.0))
def test_normalize_radians_range(angle: float) -> None:
    r = ops.normalize_radians(angle)
    assert -math.pi <= r < math.pi + 1e-9
    assert math.isclose(math.cos(r), math.cos(angle), abs_tol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.floats(0.2, 0.8),
    st.floats(0.2, 0.8),
    st.floats(0.1, 0.6),
    st.floats(-3.0, 3.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_projection_matches_crop_matrix(
    xc: float, yc: float, side: float, rot: float, u: float, v: float
) -> None:
    """LandmarkProjection (normalised ROI) and the crop matrix agree on square pixels."""
    size = (640, 480)
    roi = Rect(xc, yc, side, side * 640 / 480, rot)
    pt = np.array([[u, v]], np.float32)
    a = ops.project_points(pt, roi)
    b = ops.project_with_matrix(pt, roi, size)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_roi_tracking_keeps_close_rects_and_drops_far_ones() -> None:
    size = (640, 480)
    prev = Rect(0.5, 0.5, 0.2, 0.2, 0.0)
    lms = np.array([[0.5, 0.5, 0.0], [0.52, 0.48, 0.0]], np.float32)
    near = Rect(0.51, 0.5, 0.21, 0.2, 0.05)
    far = Rect(0.8, 0.5, 0.2, 0.2, 0.0)
    assert ops.roi_tracking(lms, prev, near, size, 40, 0.2, 0.4, -0.1) is prev
    assert ops.roi_tracking(lms, prev, far, size, 40, 0.2, 0.4, -0.1) is far
    assert ops.roi_tracking(None, None, near, size, 40, 0.2, 0.4, -0.1) is near
    turned = Rect(0.5, 0.5, 0.2, 0.2, math.radians(60))
    assert ops.roi_tracking(lms, prev, turned, size, 40, 0.2, 0.4, -0.1) is turned


def test_one_euro_is_identity_on_a_still_point_and_lags_a_jump() -> None:
    f = ops.OneEuro(0.05, 80.0)
    lm = np.full((2, 3), 0.5, np.float32)
    roi = Rect(0.5, 0.5, 0.3, 0.3)
    for k in range(3):
        out = ops.smooth_landmarks(f, lm, (100, 100), roi, k / 30)
        np.testing.assert_allclose(out, lm, atol=1e-6)
    moved = lm + np.float32(0.1)
    out = ops.smooth_landmarks(f, moved, (100, 100), roi, 3 / 30)
    assert np.all(out[:, :2] > lm[:, :2]) and np.all(out[:, :2] < moved[:, :2])
    f.reset()
    np.testing.assert_allclose(ops.smooth_landmarks(f, moved, (100, 100), roi, 4 / 30), moved)


def _refine_loop(lm: np.ndarray, heatmap: np.ndarray, kernel: int = 9) -> np.ndarray:
    """RefineLandmarksFromHeatmapCalculator, one landmark at a time (the reference)."""
    hh, hw, n = heatmap.shape
    out = lm.copy()
    off = (kernel - 1) // 2
    for i in range(min(n, lm.shape[0])):
        cx, cy = int(lm[i, 0] * hw), int(lm[i, 1] * hh)
        if not (0 <= cx < hw and 0 <= cy < hh):
            continue
        r0, r1 = max(0, cy - off), min(hh, cy + off + 1)
        c0, c1 = max(0, cx - off), min(hw, cx + off + 1)
        conf = 1.0 / (1.0 + np.exp(-heatmap[r0:r1, c0:c1, i].astype(np.float64)))
        if conf.max() >= 0.5 and conf.sum() > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i, 0] = (cols * conf).sum() / hw / conf.sum()
            out[i, 1] = (rows * conf).sum() / hh / conf.sum()
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.5, 8.0))
def test_heatmap_refinement_matches_the_windowed_loop(seed: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    heatmap = (rng.normal(size=(16, 20, 7)) * spread).astype(np.float32)
    lm = rng.uniform(-0.2, 1.2, size=(9, 3)).astype(np.float32)  # some off the map
    got = ops.refine_from_heatmap(lm, heatmap, kernel=5)
    np.testing.assert_allclose(got, _refine_loop(lm, heatmap, kernel=5), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- real media
cv2 = pytest.importorskip("cv2")


def _image(name: str) -> np.ndarray:
    bgr = cv2.imread(str(MEDIA / name))
    assert bgr is not None, name
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _video(name: str, n: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEDIA / name))
    frames = []
    while n is None or len(frames) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    cap.release()
    assert frames, name
    return frames


@pytest.fixture(scope="module")
def still() -> Iterator[object]:
    with create_extractor("onnx", static_image_mode=True, device="cpu", num_threads=1) as ex:
        yield ex


@pytest.fixture(scope="module")
def video() -> Iterator[object]:
    with create_extractor("onnx", static_image_mode=False, device="cpu", num_threads=1) as ex:
        yield ex


def _present(frame: np.ndarray) -> dict[str, bool]:
    out = {}
    for name, rng in PARTS.items():
        block = frame[rng.start : rng.stop]
        finite = np.isfinite(block).all(axis=1)
        assert finite.all() or not finite.any(), f"{name} is partly NaN"
        out[name] = bool(finite.all())
    return out


def test_full_body_photo_has_every_part(still: object) -> None:
    frame = still.process(_image("full_body.jpg"))  # type: ignore[attr-defined]
    assert frame.shape == (543, 3) and frame.dtype == np.float32
    assert _present(frame) == dict.fromkeys(PARTS, True)
    xy = frame[:, :2]
    assert np.all((xy > -0.2) & (xy < 1.2))
    # the face lies above the shoulders, the nose inside the face's box
    face = frame[FACE.start : FACE.stop]
    assert face[:, 1].max() < frame[POSE.start + 11, 1]
    nose = frame[POSE.start]
    assert face[:, 0].min() < nose[0] < face[:, 0].max()


def test_bgr_input_and_blank_image(still: object) -> None:
    rgb = _image("business_person_479x679.jpg")
    # like MediaPipe, still mode tracks hand and face ROIs across calls: reset in between
    still.reset()  # type: ignore[attr-defined]
    a = still.process(rgb)  # type: ignore[attr-defined]
    still.reset()  # type: ignore[attr-defined]
    b = still.process(rgb[:, :, ::-1], bgr=True)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a, b)
    # a decoded (contiguous) BGR frame: cropped as is, each crop flipped to RGB
    still.reset()  # type: ignore[attr-defined]
    c = still.process(np.ascontiguousarray(rgb[:, :, ::-1]), bgr=True)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a, c)
    blank = still.process(np.zeros((240, 320, 3), np.uint8))  # type: ignore[attr-defined]
    assert np.isnan(blank).all()


def test_video_tracks_and_redetects_after_loss(video: object) -> None:
    ex = video
    ex.reset()  # type: ignore[attr-defined]
    detected = []
    frames = _video("signing_16f.mp4", 6)
    for f in frames:
        out = ex.process(f)  # type: ignore[attr-defined]
        assert _present(out)["pose"]
        detected.append(ex.last_detected)  # type: ignore[attr-defined]
    assert detected == [True] + [False] * (len(frames) - 1)
    lost = ex.process(np.zeros_like(frames[0]))  # type: ignore[attr-defined]
    assert np.isnan(lost).all()
    ex.process(frames[0])  # type: ignore[attr-defined]
    assert ex.last_detected  # type: ignore[attr-defined]


def test_still_mode_detects_every_frame(still: object) -> None:
    for f in _video("thumbs_up_12f_640x360.mp4", 2):
        still.process(f)  # type: ignore[attr-defined]
        assert still.last_detected  # type: ignore[attr-defined]


def test_hand_tasks_match_the_batched_hands() -> None:
    """Per-hand calls side by side (CPU default) give the frames of one batched serial call."""
    from signrt.extract.onnx_holistic import OnnxHolisticExtractor

    frames = _video("thumbs_up_12f_640x360.mp4", 6)
    with (
        OnnxHolisticExtractor(device="cpu", num_threads=1) as tasks,
        OnnxHolisticExtractor(device="cpu", num_threads=1, hand_batch=True, parallel=False) as one,
    ):
        assert not tasks.hand_batch and one.hand_batch
        both = 0
        for f in frames:
            a, b = tasks.process(f), one.process(f)
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True)
            present = _present(a)
            assert present["right_hand"]  # the thumbs-up hand, in every frame
            both += present["left_hand"]
        assert both >= 2  # and frames with both hands: two tasks side by side


# ----------------------------------------------------------------------------- errors
def _model_copy(tmp_path: Path, broken: str | None, drop: str | None, manifest: bool) -> Path:
    src = Path(ops.__file__).parent / "_models" / "holistic"
    dst = tmp_path / "models"
    dst.mkdir()
    for f in src.glob("*.onnx"):
        if f.name == drop:
            continue
        if f.name == broken:
            (dst / f.name).write_bytes(f.read_bytes()[:1000])
        else:
            (dst / f.name).symlink_to(f)
    if manifest:
        shutil.copy(src / "MANIFEST.json", dst / "MANIFEST.json")
    return dst


@pytest.mark.parametrize(
    ("broken", "drop", "manifest", "word"),
    [
        (None, "hand_recrop.onnx", True, "missing"),
        ("face_landmark.onnx", None, True, "corrupt"),
        ("face_landmark.onnx", None, False, "could not be loaded"),
    ],
)
def test_missing_or_corrupt_model_names_file_and_fix(
    tmp_path: Path, broken: str | None, drop: str | None, manifest: bool, word: str
) -> None:
    from signrt.extract.onnx_holistic import OnnxHolisticExtractor

    folder = _model_copy(tmp_path, broken, drop, manifest)
    with pytest.raises(ExtractorError) as info:
        OnnxHolisticExtractor(model_dir=folder, device="cpu")
    msg = str(info.value)
    assert (broken or drop or "") in msg and word in msg
    assert "convert_holistic.py" in msg and "reinstall" in msg


def test_unknown_device_and_landmarker_names() -> None:
    with pytest.raises(ExtractorError, match="unknown device"):
        create_extractor("onnx:tpu")
    with pytest.raises(ExtractorError, match="'onnx'"):
        create_extractor("nonsense")
    with pytest.raises(ExtractorError, match="full pose model only"):
        create_extractor("onnx", model_complexity=2)


def test_unavailable_gpu_device_is_a_clear_error() -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ExtractorError, match="not available"):
        create_extractor("onnx", device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_gpu_devices_match_cpu(device: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    want = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}[device]
    if want not in ort.get_available_providers():
        pytest.skip(f"onnxruntime offers no {want}")
    img = _image("full_body.jpg")
    with create_extractor("onnx", static_image_mode=True, device=device) as gpu:
        assert gpu.providers[0] == want  # type: ignore[attr-defined]
        a = gpu.process(img)
    with create_extractor("onnx", static_image_mode=True, device="cpu") as cpu:
        b = cpu.process(img)
    assert _present(a) == _present(b)
    both = np.isfinite(a[:, 0]) & np.isfinite(b[:, 0])
    assert np.abs(a[both, :2] - b[both, :2]).max() < 0.01  # fp16 engines: within 1 %


# ----------------------------------------------------------------------------- parity
def _mean_dist(a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> float:
    w, h = size
    d = np.hypot((a[:, 0] - b[:, 0]) * w, (a[:, 1] - b[:, 1]) * h)
    return float(d.mean() / math.hypot(w, h))


@pytest.fixture(scope="module")
def mediapipe_still() -> Iterator[object]:
    pytest.importorskip("mediapipe")
    with create_extractor("legacy", static_image_mode=True) as ex:
        yield ex


@pytest.mark.parametrize("name", ["full_body.jpg", "business_person_479x679.jpg"])
def test_still_parity_with_mediapipe(still: object, mediapipe_still: object, name: str) -> None:
    img = _image(name)
    a = still.process(img)  # type: ignore[attr-defined]
    b = mediapipe_still.process(img)  # type: ignore[attr-defined]
    assert _present(a) == _present(b)
    size = (img.shape[1], img.shape[0])
    for part, rng in PARTS.items():
        if _present(a)[part]:
            d = _mean_dist(a[rng.start : rng.stop], b[rng.start : rng.stop], size)
            assert d < 0.005, f"{part}: {d:.4%} of the diagonal"


def test_video_parity_with_mediapipe(video: object) -> None:
    pytest.importorskip("mediapipe")
    frames = _video("signing_16f.mp4", 10)
    size = (frames[0].shape[1], frames[0].shape[0])
    video.reset()  # type: ignore[attr-defined]
    agree = dict.fromkeys(PARTS, 0)
    dists: dict[str, list[float]] = {p: [] for p in PARTS}
    with create_extractor("legacy", static_image_mode=False) as mp:
        for f in frames:
            a, b = video.process(f), mp.process(f)  # type: ignore[attr-defined]
            pa, pb = _present(a), _present(b)
            for part, rng in PARTS.items():
                agree[part] += pa[part] == pb[part]
                if pa[part] and pb[part]:
                    dists[part].append(
                        _mean_dist(a[rng.start : rng.stop], b[rng.start : rng.stop], size)
                    )
    for part in PARTS:
        assert agree[part] >= len(frames) - 1, (part, agree[part])
        if dists[part]:
            assert np.mean(dists[part]) < 0.01, (part, np.mean(dists[part]))


# ----------------------------------------------------------------------------- interfaces
def test_default_is_onnx_without_mediapipe(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from signrt.extract.onnx_holistic import OnnxHolisticExtractor

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "mediapipe" else real(name, *a),
    )
    with create_extractor(static_image_mode=True, device="cpu", num_threads=1) as ex:
        assert isinstance(ex, OnnxHolisticExtractor) and ex.device == "cpu"
        assert ex.backend == "holistic-onnx"


def test_extract_cli_with_the_onnx_landmarker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from signrt.cli import main
    from signrt.io.kaggle import read_parquet

    video = tmp_path / "videos" / "hello" / "clip.mp4"
    video.parent.mkdir(parents=True)
    shutil.copy(MEDIA / "thumbs_up_12f_640x360.mp4", video)
    out = tmp_path / "dataset"
    rc = main(
        [
            "extract",
            str(video),
            "-o",
            str(out),
            "-j",
            "1",
            "--no-progress",
            "--landmarker",
            "onnx:cpu",
            "--max-frames",
            "4",
        ]
    )
    assert rc == 0, capsys.readouterr()
    clips = list(out.rglob("*.parquet"))
    assert len(clips) == 1
    clip = read_parquet(clips[0])
    assert clip.shape == (4, 543, 3)
    assert np.isfinite(clip[:, POSE.start : POSE.stop]).all()
    assert np.isfinite(clip[:, FACE.start : FACE.stop]).all()


def test_bundled_models_match_their_manifest() -> None:
    import hashlib
    import json

    folder = Path(ops.__file__).parent / "_models" / "holistic"
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["mediapipe"] == "0.10.21"
    assert (folder / "LICENSE").read_text().count("Apache License, Version 2.0") == 1
    names = set()
    for m in manifest["models"]:
        data = (folder / m["onnx"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == m["onnx_sha256"], m["onnx"]
        assert len(data) == m["onnx_bytes"]
        for out in m["check"]["outputs"]:  # TFLite vs ONNX on real images
            assert out["max_abs_diff"] <= 1e-3 * max(1.0, out["max_abs_value"]) + 0.02, out
        names.add(m["name"])
    assert len(names) == 6


def _converter() -> object:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "convert_holistic.py"
    spec = importlib.util.spec_from_file_location("convert_holistic", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_layout_rewrites_compute_the_same_function() -> None:
    """PRelu -> depthwise convs and channel Pad -> 1x1 conv: same outputs on ONNX Runtime."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    conv = _converter()
    rng = np.random.default_rng(3)
    slope = rng.uniform(-1.5, 1.5, size=(1, 8, 1, 1)).astype(np.float32)
    weight = rng.normal(size=(8, 4, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c", "s"], ["p"]),
        helper.make_node("Pad", ["p", "pads"], ["y"]),  # 8 -> 12 channels, zeros
    ]
    inits = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(slope, "s"),
        numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 4, 0, 0], np.int64), "pads"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12, 10, 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    x = rng.normal(size=(1, 4, 10, 10)).astype(np.float32)

    def run(m: object) -> np.ndarray:
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
        out: np.ndarray = sess.run(None, {"x": x})[0]
        return out

    ref = run(model)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    assert conv.rewrite_prelu(rewritten) == 1  # type: ignore[attr-defined]
    assert conv.rewrite_channel_pad(rewritten) == 1  # type: ignore[attr-defined]
    onnx.checker.check_model(rewritten)
    assert {n.op_type for n in rewritten.graph.node} == {"Conv", "Relu", "Add"}
    got = run(rewritten)
    assert np.all(got[:, 8:] == 0.0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # a slope broadcast over the last axis is not per channel: left alone
    other = onnx.ModelProto()
    other.CopyFrom(model)
    other.graph.initializer[1].CopyFrom(
        numpy_helper.from_array(rng.uniform(size=(10,)).astype(np.float32), "s")
    )
    assert conv.rewrite_prelu(other) == 0  # type: ignore[attr-defined]


def test_bundled_cpu_models_keep_ort_layout() -> None:
    """The shipped face_landmark and hand_recrop carry the rewrites their manifest records."""
    onnx = pytest.importorskip("onnx")
    import json

    folder = Path(ops.__file__).parent / "_models" / "holistic"
    manifest = {m["name"]: m for m in json.loads((folder / "MANIFEST.json").read_text())["models"]}
    for name in ("face_landmark", "hand_recrop"):
        ops_used = {n.op_type for n in onnx.load(str(folder / f"{name}.onnx")).graph.node}
        assert "PRelu" not in ops_used and "Pad" not in ops_used, (name, ops_used)
        assert manifest[name]["layout_rewrites"]["prelu"] > 0
