"""Landmark extractors: legacy Holistic on a real photo and on a video, the Tasks adapter."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from signrt.extract.extractor import (
    ExtractorError,
    create_extractor,
    empty_frame,
    landmarks_to_frame,
)
from signrt.layouts import FACE, LEFT_HAND, POSE, RIGHT_HAND

pytestmark = pytest.mark.timeout(120)


def _astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return np.asarray(data.astronaut())  # (512, 512, 3) RGB


def _pts(n: int, base: float = 0.1) -> list[SimpleNamespace]:
    return [SimpleNamespace(x=base + i * 1e-3, y=0.5, z=-0.1) for i in range(n)]


# ------------------------------------------------------------- conversion (no MediaPipe)
def test_landmarks_to_frame_places_parts_and_drops_irises() -> None:
    face = _pts(478, 0.2)  # Tasks face with irises
    pose = _pts(33, 0.3)
    right = _pts(21, 0.6)
    frame = landmarks_to_frame(face, None, pose, right)
    assert frame.shape == (543, 3) and frame.dtype == np.float32
    np.testing.assert_allclose(frame[FACE.start, 0], 0.2)
    np.testing.assert_allclose(frame[FACE.stop - 1, 0], 0.2 + 467e-3, rtol=1e-5)
    np.testing.assert_allclose(frame[POSE.start : POSE.stop, 0], 0.3 + np.arange(33) * 1e-3,
                               rtol=1e-5)
    assert np.isnan(frame[LEFT_HAND.start : LEFT_HAND.stop]).all()
    np.testing.assert_allclose(frame[RIGHT_HAND.start, :], [0.6, 0.5, -0.1], rtol=1e-6)


def test_landmarks_to_frame_accepts_legacy_lists_and_short_parts() -> None:
    legacy = SimpleNamespace(landmark=_pts(21, 0.4))
    frame = landmarks_to_frame(None, legacy, _pts(10), [])
    np.testing.assert_allclose(frame[LEFT_HAND.start, 0], 0.4)
    assert np.isnan(frame[POSE.start : POSE.stop]).all()  # too few points: left missing
    assert np.isnan(frame[FACE.start : FACE.stop]).all()
    assert np.isnan(empty_frame()).all()


def test_create_extractor_errors(tmp_path: Path) -> None:
    with pytest.raises(ExtractorError, match="not found"):
        create_extractor(tmp_path / "missing.task")
    with pytest.raises(ExtractorError, match="unknown landmark model"):
        create_extractor("model.tflite")


# -------------------------------------------------------------------- real MediaPipe
@pytest.fixture(scope="module")
def mp() -> object:
    return pytest.importorskip("mediapipe")


def test_holistic_on_astronaut_finds_face_and_pose(mp: object) -> None:
    img = _astronaut()
    with create_extractor(static_image_mode=True) as ex:
        assert ex.backend == "holistic-legacy"
        frame = ex.process(img)
        # The same image given as BGR (and channels swapped back) gives the same result.
        again = ex.process(np.ascontiguousarray(img[:, :, ::-1]), bgr=True)
    assert frame.shape == (543, 3) and frame.dtype == np.float32
    face, pose = frame[FACE.start : FACE.stop], frame[POSE.start : POSE.stop]
    assert np.isfinite(face).all() and np.isfinite(pose).all()
    assert np.isnan(frame[LEFT_HAND.start : LEFT_HAND.stop]).all()
    assert np.isnan(frame[RIGHT_HAND.start : RIGHT_HAND.stop]).all()
    # The face is in the upper middle of the photo; the shoulders are below the face.
    cx, cy = np.nanmean(face[:, 0]), np.nanmean(face[:, 1])
    assert 0.3 < cx < 0.65 and 0.1 < cy < 0.45
    assert frame[500, 1] > cy and frame[501, 1] > cy
    np.testing.assert_allclose(again, frame, atol=0.02)  # static mode, same image


def test_holistic_rejects_bad_input_and_closed_use(mp: object) -> None:
    ex = create_extractor(static_image_mode=True)
    with pytest.raises(ExtractorError, match="expected an image"):
        ex.process(np.zeros((4, 4, 5), dtype=np.uint8))
    ex.close()
    ex.close()  # idempotent
    with pytest.raises(ExtractorError, match="closed"):
        ex.process(np.zeros((8, 8, 3), dtype=np.uint8))


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    cv2 = pytest.importorskip("cv2")
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(np.ascontiguousarray(f[:, :, ::-1]))  # RGB -> BGR
    writer.release()
    return path


def test_extract_video_written_with_opencv(mp: object, tmp_path: Path) -> None:
    from signrt.extract.batch import extract_video

    img = _astronaut()
    frames = [np.roll(img, 4 * i, axis=1) for i in range(6)]
    video = _write_video(tmp_path / "astronaut.avi", frames)
    clip = extract_video(video, num_threads=1)
    assert clip.shape == (6, 543, 3) and clip.dtype == np.float32
    assert np.isfinite(clip[:, FACE.start : FACE.stop]).all()
    assert np.isfinite(clip[:, POSE.start : POSE.stop]).all()
    assert np.isnan(clip[:, RIGHT_HAND.start :]).all()
    # The image moves right by 4 px per frame: so does the nose.
    nose_x = clip[:, POSE.start, 0]
    assert nose_x[-1] > nose_x[0]
