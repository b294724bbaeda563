"""Holistic landmarks on ONNX Runtime: MediaPipe's legacy Holistic graph without MediaPipe.

:class:`OnnxHolisticExtractor` runs the six models of ``holistic_landmark_cpu``
(mediapipe 0.10.21), converted to ONNX by ``tools/convert_holistic.py`` and shipped in
``signrt/extract/_models/holistic/``, and re-implements the graph around them in NumPy and
OpenCV (:mod:`._holistic_ops`):

* pose: full-image detection (224², SSD anchors, weighted NMS) only when tracking is lost;
  alignment ROI from the hip-centre keypoints; pose landmarks (256², heatmap refinement);
  the next frame's ROI from the two auxiliary landmarks; one-euro smoothing in video mode;
* hands: the ROI from the pose wrist/pinky/index, a re-crop model that re-centres it, ROI
  tracking against the previous frame's hand; on a GPU both hands in one batch for the
  re-crop and for the landmark model, on the CPU each hand as its own task (the two run
  side by side, like MediaPipe's two hand nodes);
* face: the ROI from the pose's face points, the short-range face detector in that ROI,
  ROI tracking, the 468-point face mesh.

Output is the canonical (543, 3) holistic frame, NaN for parts not found. The thresholds
and ROI constants are those of the MediaPipe graph (``min_detection_confidence`` and
``min_tracking_confidence`` act where they act there).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._closing import Closing
from ..layouts import FACE, LEFT_HAND, POSE, RIGHT_HAND
from ..runtime.options import ORT_PROVIDERS
from . import _holistic_ops as ops
from ._holistic_ops import Rect
from .extractor import ExtractorError, _as_rgb, empty_frame

__all__ = ["MODEL_DIR_ENV", "OnnxHolisticExtractor", "default_model_dir", "resolve_device"]

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]

#: Environment variable naming a folder with the six ONNX files (overrides the bundled ones).
MODEL_DIR_ENV = "SIGNRT_LANDMARK_MODELS"

_MODELS = (
    "pose_detection",
    "pose_landmark_full",
    "hand_recrop",
    "hand_landmark_full",
    "face_detection_short_range",
    "face_landmark",
)
_FIX = (
    "reinstall signrt (pip install --force-reinstall signrt), point "
    f"{MODEL_DIR_ENV} at a folder with the six files, or regenerate them with "
    "tools/convert_holistic.py"
)
#: Devices accepted by :class:`OnnxHolisticExtractor`.
DEVICES = ("auto", "cpu", "cuda", "tensorrt")

_POSE_ANCHORS = ops.ssd_anchors(224, (8, 16, 32, 32, 32))
_FACE_ANCHORS = ops.ssd_anchors(128, (8, 16, 16, 16))
#: Session config of every CPU session: no intra-op spinning. A spinning pool keeps its cores
#: busy after each call, which on a small shared CPU takes them from the face thread, the
#: classifier and everything else (benches/results/landmarks_profile.md).
_SESSION_CONFIG: dict[str, str] = {"session.intra_op.allow_spinning": "0"}
#: Pose wrist, pinky and index of the left and right hand; a hand is looked for where its
#: wrist's visibility exceeds the threshold (the graph's ThresholdingCalculator).
_HAND_POINTS = ((15, 17, 19), (16, 18, 20))
_HAND_VISIBILITY = 0.1
_FRAME_S = 1.0 / 30.0  # the legacy solution's simulated clock: 33 333 us per frame


def default_model_dir() -> Path:
    """The folder of the ONNX models: ``$SIGNRT_LANDMARK_MODELS`` or the bundled one."""
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / "_models" / "holistic"


def resolve_device(device: str) -> list[Any]:
    """ONNX Runtime providers for ``device`` (``auto``: TensorRT, CUDA, CPU, first available).

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt``.

    Returns:
        The provider list for :class:`onnxruntime.InferenceSession` (TensorRT with an fp16
        engine cache under the runtime's cache folder, then CUDA, then CPU as fallbacks).

    Raises:
        ExtractorError: For an unknown or unavailable device.
    """
    from ..runtime.engines import available_devices, default_cache_dir

    dev = device.lower().strip()
    if dev not in DEVICES:
        raise ExtractorError(f"unknown device {device!r} for the onnx landmarker; use {DEVICES}")
    avail = available_devices()
    if dev == "auto":
        dev = next((d for d in ("tensorrt", "cuda") if avail.get(d) is None), "cpu")
    elif avail.get(dev) is not None:
        raise ExtractorError(
            f"device {dev!r} is not available for the onnx landmarker: {avail[dev]}"
        )
    if dev == "cpu":
        return ["CPUExecutionProvider"]
    if dev == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cache = default_cache_dir() / "landmarks-trt"
    cache.mkdir(parents=True, exist_ok=True)
    trt = {
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache),
    }
    return [("TensorrtExecutionProvider", trt), "CUDAExecutionProvider", "CPUExecutionProvider"]


def _load_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / "MANIFEST.json"
    try:
        data = json.loads(path.read_text())
        return {m["onnx"]: m for m in data["models"]}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExtractorError(
            f"landmark model manifest {path} is unreadable ({exc}); {_FIX}"
        ) from exc


@dataclass
class _PartState:
    """What one part keeps between frames."""

    landmarks: F32 | None = None  # previous frame's landmarks (N, 3), normalised
    extra: dict[str, Any] = field(default_factory=dict)


class OnnxHolisticExtractor(Closing):
    """MediaPipe's legacy Holistic graph on ONNX Runtime (no MediaPipe at run time).

    Args:
        static_image_mode: ``True`` detects the pose in every image and does not smooth;
            ``False`` tracks the pose ROI from frame to frame (detection only when tracking
            is lost) and smooths the pose like MediaPipe.
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt`` (ONNX Runtime's TensorRT
            execution provider, fp16, engines cached in the runtime's cache folder).
        num_threads: Intra-op threads of each CPU session (``None``: ONNX Runtime's default);
            with ``hand_batch`` the hand model, which then runs both hands in one call, gets
            twice as many.
        min_detection_confidence: Pose detection score threshold.
        min_tracking_confidence: Pose landmark presence threshold.
        smooth_landmarks: One-euro smoothing of the pose in video mode.
        model_dir: Folder with the six ONNX files (default :func:`default_model_dir`).
        parallel: Run the face or one hand on a worker thread beside the calling one (ONNX
            Runtime releases the GIL), as MediaPipe's executor runs its independent nodes:
            with both hands visible the right hand on the worker, the left hand and the
            face on the caller, else the face on the worker; ``False`` runs everything on
            the calling thread.
        hand_batch: Both hands in one batched call of each hand model (``None``: on GPU
            devices only). On the CPU one call per hand is no more work than a batch of two
            (benches/results/landmarks_profile.md) and, with ``parallel``, the two calls
            run side by side on one intra-op thread each, with no intra-op hand-offs.
        session_config: Extra ONNX Runtime session config entries for every session
            (``SessionOptions.add_session_config_entry``), e.g.
            ``{"session.intra_op.allow_spinning": "1"}``.

    Raises:
        ExtractorError: If a model file is missing or corrupt (the message names the file
            and the fix), OpenCV is missing, or the device is unavailable.
    """

    backend = "holistic-onnx"
    #: Intra-op threads of the batched hand call, per ``num_threads``.
    _HAND_THREADS = 2

    def __init__(
        self,
        *,
        static_image_mode: bool = False,
        device: str = "auto",
        num_threads: int | None = None,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        smooth_landmarks: bool = True,
        model_dir: str | os.PathLike[str] | None = None,
        parallel: bool = True,
        session_config: dict[str, str] | None = None,
        hand_batch: bool | None = None,
    ) -> None:
        if num_threads is not None and num_threads < 1:
            raise ExtractorError(f"num_threads must be >= 1 or None, got {num_threads}")
        try:
            import cv2  # noqa: F401
        except ImportError as exc:
            raise ExtractorError(
                f"OpenCV is not installed ({exc}); the onnx landmarker needs it: "
                "pip install 'signrt[landmarks]' (opencv-python-headless)"
            ) from exc
        import onnxruntime as ort

        self.static_image_mode = static_image_mode
        self.smooth = smooth_landmarks and not static_image_mode
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        folder = Path(model_dir) if model_dir is not None else default_model_dir()
        self.model_dir = folder
        providers = resolve_device(device)
        on_cpu = providers == ["CPUExecutionProvider"]
        batch_hands = (not on_cpu) if hand_batch is None else bool(hand_batch)
        #: Whether both hands go through each hand model in one batched call.
        self.hand_batch = batch_hands
        manifest = _load_manifest(folder)
        config = dict(_SESSION_CONFIG)
        config.update(session_config or {})

        def options(threads: int | None) -> Any:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            if threads is not None:
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
            for key, value in config.items():
                so.add_session_config_entry(key, value)
            return so

        so = options(num_threads)
        self._sessions: dict[str, Any] = {}
        t0 = time.perf_counter()
        for name in _MODELS:
            path = folder / f"{name}.onnx"
            if not path.is_file():
                raise ExtractorError(f"landmark model {path} is missing; {_FIX}")
            expected = manifest.get(path.name, {}).get("onnx_bytes")
            if expected is not None and path.stat().st_size != expected:
                raise ExtractorError(
                    f"landmark model {path} is corrupt ({path.stat().st_size} bytes, "
                    f"expected {expected}); {_FIX}"
                )
            opts = so
            if name == "hand_landmark_full" and num_threads is not None and batch_hands:
                # one batched call serves both hands, which MediaPipe runs as two nodes of
                # num_threads each, side by side: give the batch their threads together
                opts = options(self._HAND_THREADS * num_threads)
            try:
                self._sessions[name] = ort.InferenceSession(str(path), opts, providers=providers)
            except Exception as exc:
                raise ExtractorError(
                    f"landmark model {path} could not be loaded ({exc}); {_FIX}"
                ) from exc
        first = self._sessions["pose_landmark_full"].get_providers()
        self.providers: tuple[str, ...] = tuple(first)
        self.device = next((d for d, p in ORT_PROVIDERS.items() if p == first[0]), "cpu")
        self._io = {
            n: (s.get_inputs()[0].name, [o.name for o in s.get_outputs()])
            for n, s in self._sessions.items()
        }
        self._closed = False
        self._bgr = False  # whether the frame in process is BGR (crops flip it)
        # one worker: the face or a hand runs beside the calling thread (see _process)
        self._pool: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(1, thread_name_prefix="signrt-holistic") if parallel else None
        )
        self.reset()
        log.debug(
            "onnx Holistic ready in %.0f ms on %s (static=%s)",
            (time.perf_counter() - t0) * 1e3,
            list(self.providers),
            static_image_mode,
        )

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Forget all tracking state (start of a new video)."""
        self._pose_roi: Rect | None = None
        self._pose_filter = ops.OneEuro(0.05, 80.0)
        self._aux_filter = ops.OneEuro(0.01, 10.0)
        self._vis_filter = ops.LowPass(0.1)
        self._hands = [_PartState(), _PartState()]
        self._face = _PartState()
        self._frame = 0
        self._last_t: float | None = None
        #: Per-frame diagnostics: whether the pose detector ran on the last frame.
        self.last_detected = False

    def close(self) -> None:
        """Release the sessions (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._sessions = {}
        self._closed = True


    def _crop_batch(
        self, rgb: npt.NDArray[np.uint8], rects: list[Rect], size: tuple[int, int], side: int
    ) -> tuple[F32, list[tuple[float, float, float, float]]]:
        """Letterboxed (side, side) crops of ``rects`` in [0, 1], one batch for one model call.

        Returns the (N, side, side, 3) batch and each crop's letterbox padding.
        """
        batch = np.empty((len(rects), side, side, 3), dtype=np.float32)  # (N, side, side, 3)
        pads = []
        for j, rect in enumerate(rects):
            padded, pad = ops.pad_rect(rect, size, side, side)
            ops.crop(rgb, padded, side, side, zero_border=False, value_range=(0.0, 1.0),
                     bgr=self._bgr, out=batch[j])  # fmt: skip
            pads.append(pad)
        return batch, pads

    def _run(self, name: str, x: F32) -> list[F32]:
        inp, outs = self._io[name]
        res: list[F32] = self._sessions[name].run(outs, {inp: x})
        return res

    # ------------------------------------------------------------------ public
    def process(
        self, image: npt.ArrayLike, *, timestamp_ms: int | None = None, bgr: bool = False
    ) -> F32:
        """Extract the landmarks of one image.

        Args:
            image: (H, W, 3) uint8 image (float images in 0..1 are accepted).
            timestamp_ms: Frame time in ms for the smoothing filter (video mode); when
                ``None`` frames are taken as 1/30 s apart, like MediaPipe's legacy solution.
            bgr: Whether the image is BGR (OpenCV order) rather than RGB.

        Returns:
            A (543, 3) float32 frame, NaN for parts not found.

        Raises:
            ExtractorError: If the extractor is closed or inference fails.
        """
        if self._closed:
            raise ExtractorError("this extractor is closed; create a new one")
        img = np.asarray(image)
        if bgr and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
            # the crops are taken from the BGR frame and flipped to RGB one by one: no
            # full-frame conversion or copy
            rgb, self._bgr = np.ascontiguousarray(img), True
        else:
            rgb, self._bgr = _as_rgb(img, bgr), False
        t = self._frame * _FRAME_S if timestamp_ms is None else timestamp_ms / 1e3
        if self._last_t is not None and t <= self._last_t:
            t = self._last_t + 1e-3
        self._last_t = t
        self._frame += 1
        try:
            return self._process(rgb, t)
        except ExtractorError:
            raise
        except Exception as exc:
            raise ExtractorError(f"onnx Holistic failed on an image: {exc}") from exc

    def process_many(self, images: Any, *, bgr: bool = False) -> F32:
        """Extract a clip from a sequence of images, in order: (T, 543, 3) float32."""
        frames = [self.process(img, bgr=bgr) for img in images]
        if not frames:
            return np.zeros((0, 543, 3), dtype=np.float32)
        return np.stack(frames)

    # ------------------------------------------------------------------ graph
    def _process(self, rgb: npt.NDArray[np.uint8], t: float) -> F32:
        size = (rgb.shape[1], rgb.shape[0])
        out = empty_frame()
        pose = self._pose(rgb, size, t)
        if pose is None:
            self._hands = [_PartState(), _PartState()]
            self._face = _PartState()
            return out
        lm, vis = pose
        out[POSE.start : POSE.stop] = lm[:, :3]
        # face and hands depend only on the pose and each on its own state: they run side
        # by side (ONNX Runtime releases the GIL), as MediaPipe's executor runs its nodes;
        # one worker and one hand-off per frame: on a loaded CPU every wake-up of a thread
        # waits for a core, so the split is right hand | left hand + face with both hands
        # visible, and the face | the hands otherwise
        pool = self._pool
        both = sum(float(vis[w]) > _HAND_VISIBILITY for w, _, _ in _HAND_POINTS) == 2
        if pool is None:
            hands = self._hands_step(rgb, size, lm, vis, (0, 1))
            face = self._face_mesh(rgb, size, lm)
        elif both and not self.hand_batch:
            other = pool.submit(self._hands_step, rgb, size, lm, vis, (1,))
            hands = self._hands_step(rgb, size, lm, vis, (0,))
            face = self._face_mesh(rgb, size, lm)
            hands[1] = other.result()[1]
        else:
            pending = pool.submit(self._face_mesh, rgb, size, lm)
            hands = self._hands_step(rgb, size, lm, vis, (0, 1))
            face = pending.result()
        for slot, hand in zip((LEFT_HAND, RIGHT_HAND), hands, strict=True):
            if hand is not None:
                out[slot.start : slot.stop] = hand
        if face is not None:
            out[FACE.start : FACE.stop] = face
        return out

    def _detect_pose(self, rgb: npt.NDArray[np.uint8], size: tuple[int, int]) -> Rect | None:
        full, pad = ops.pad_rect(Rect(0.5, 0.5, 1.0, 1.0), size, 224, 224)
        x = ops.crop(rgb, full, 224, 224, zero_border=True, value_range=(-1.0, 1.0), bgr=self._bgr)
        boxes, scores = self._run("pose_detection", x[None])
        det = ops.decode_detections(
            boxes[0], scores[0], _POSE_ANCHORS, 224.0, 4, self.min_detection_confidence
        )
        det = ops.weighted_nms(det, 0.3)
        if len(det) == 0:
            return None
        kp = ops.remove_letterbox_points(det.keypoints[0], pad)  # (4, 2)
        return ops.transform_rect(ops.alignment_rect(kp[0], kp[1], size, 90.0), size, 1.25)

    def _pose(
        self, rgb: npt.NDArray[np.uint8], size: tuple[int, int], t: float
    ) -> tuple[F32, F32] | None:
        roi = None if self.static_image_mode else self._pose_roi
        self.last_detected = roi is None
        if roi is None:
            roi = self._detect_pose(rgb, size)
            if roi is None:
                self._lose_pose()
                return None
        padded, pad = ops.pad_rect(roi, size, 256, 256)
        x = ops.crop(
            rgb, padded, 256, 256, zero_border=False, value_range=(0.0, 1.0), bgr=self._bgr
        )
        raw, flag, heatmap, _world = self._run("pose_landmark_full", x[None])
        if float(flag.reshape(-1)[0]) < self.min_tracking_confidence:
            self._lose_pose()
            return None
        r = raw.reshape(39, 5).astype(np.float32)
        lm = np.empty((39, 3), dtype=np.float32)
        lm[:, :3] = r[:, :3] / 256.0  # x, y, z (z scaled like x)
        vis = (1.0 / (1.0 + np.exp(-r[:, 3]))).astype(np.float32)
        lm = ops.refine_from_heatmap(lm, heatmap[0])
        lm = ops.project_points(ops.remove_letterbox_points(lm, pad), roi)
        body, aux = lm[:33], lm[33:35]
        vis = vis[:33]
        scale_roi = ops.alignment_rect(aux[0], aux[1], size, 90.0)
        if not self.static_image_mode:
            # MediaPipe always filters the auxiliary (ROI) landmarks, smoothing or not
            aux = ops.smooth_landmarks(self._aux_filter, aux, size, scale_roi, t)
        if self.smooth:
            vis = self._vis_filter(vis.astype(np.float64)).astype(np.float32)
            body = ops.smooth_landmarks(self._pose_filter, body, size, scale_roi, t)
        self._pose_roi = ops.transform_rect(
            ops.alignment_rect(aux[0], aux[1], size, 90.0), size, 1.25
        )
        return body, vis

    def _lose_pose(self) -> None:
        self._pose_roi = None
        self._pose_filter.reset()
        self._aux_filter.reset()
        self._vis_filter.reset()

    def _hands_step(
        self,
        rgb: npt.NDArray[np.uint8],
        size: tuple[int, int],
        pose: F32,
        vis: F32,
        which: tuple[int, ...],
    ) -> list[F32 | None]:
        """The hands ``which`` (0 left, 1 right) of one frame, in one batch per model.

        Without ``hand_batch`` each model call takes one hand (the loop below): the same
        steps, and each hand's state is touched by its own task only.
        """
        if not self.hand_batch and len(which) > 1:
            result: list[F32 | None] = [None, None]
            for k in which:
                result[k] = self._hands_step(rgb, size, pose, vis, (k,))[k]
            return result
        return self._hand_pair(rgb, size, pose, vis, which)

    def _hand_pair(
        self,
        rgb: npt.NDArray[np.uint8],
        size: tuple[int, int],
        pose: F32,
        vis: F32,
        which: tuple[int, ...] = (0, 1),
    ) -> list[F32 | None]:
        # ROIs from the pose, then the re-crops in one call: (n, 256, 256, 3)
        seen: list[int] = []
        from_pose: list[Rect] = []
        for k, (wrist, pinky, index) in enumerate(_HAND_POINTS):
            if k in which and float(vis[wrist]) > _HAND_VISIBILITY:
                seen.append(k)
                rect = ops.hand_rect_from_pose(pose[wrist], pose[pinky], pose[index], size)
                from_pose.append(ops.transform_rect(rect, size, 2.7, shift_y=-0.1))
        rois: list[Rect | None] = [None, None]
        if seen:
            crops, pads = self._crop_batch(rgb, from_pose, size, 256)
            recrop_pts = self._run("hand_recrop", crops)[0].reshape(len(seen), 2, 2) / 256.0
            for j, k in enumerate(seen):
                pts = ops.project_points(
                    ops.remove_letterbox_points(recrop_pts[j], pads[j]), from_pose[j]
                )
                recrop = ops.transform_rect(
                    ops.alignment_rect(pts[0], pts[1], size, -90.0), size, 1.0, shift_y=-0.1
                )
                prev = self._hands[k].landmarks
                prev_rect = None
                if prev is not None:
                    prev_rect = ops.transform_rect(
                        ops.hand_rect_from_landmarks(prev, size), size, 2.0, shift_y=-0.1
                    )
                rois[k] = ops.roi_tracking(prev, prev_rect, recrop, size, 40.0, 0.2, 0.4, -0.1)
        todo = [k for k, r in enumerate(rois) if r is not None]
        result: list[F32 | None] = [None, None]
        if todo:
            hand_rois = [r for r in rois if r is not None]
            batch, pads = self._crop_batch(rgb, hand_rois, size, 224)
            raw, flag, _handed, _world = self._run("hand_landmark_full", batch)
            for j, k in enumerate(todo):
                roi = rois[k]
                assert roi is not None
                if float(flag.reshape(len(todo), -1)[j, 0]) < 0.5:
                    continue
                lm = raw[j].reshape(21, 3).astype(np.float32) / 224.0
                lm[:, 2] /= 0.4
                result[k] = ops.project_points(ops.remove_letterbox_points(lm, pads[j]), roi)
        for k in which:
            self._hands[k].landmarks = result[k]
        return result

    def _face_mesh(
        self, rgb: npt.NDArray[np.uint8], size: tuple[int, int], pose: F32
    ) -> F32 | None:
        state = self._face
        from_pose = ops.transform_rect(ops.bbox_rect(pose[:11], size, 5, 2, 0.0), size, 3.0)
        padded, _pad = ops.pad_rect(from_pose, size, 128, 128)
        x = ops.crop(
            rgb, padded, 128, 128, zero_border=True, value_range=(-1.0, 1.0), bgr=self._bgr
        )
        boxes, scores = self._run("face_detection_short_range", x[None])
        det = ops.weighted_nms(
            ops.decode_detections(boxes[0], scores[0], _FACE_ANCHORS, 128.0, 6, 0.5), 0.3
        )
        if len(det) == 0:
            state.landmarks = None
            return None
        kp = ops.project_with_matrix(det.keypoints[0], padded, size)  # (6, 2)
        recrop = ops.transform_rect(ops.keypoints_rect(kp, size, 0, 1), size, 2.0, shift_y=-0.1)
        prev_rect = None
        if state.landmarks is not None:
            prev_rect = ops.transform_rect(
                ops.bbox_rect(state.landmarks, size, 33, 263, 0.0), size, 1.5
            )
        roi = ops.roi_tracking(state.landmarks, prev_rect, recrop, size, 15.0, 0.1, 0.3, -0.2)
        x = ops.crop(rgb, roi, 192, 192, zero_border=False, value_range=(0.0, 1.0), bgr=self._bgr)
        raw, flag = self._run("face_landmark", x[None])
        if 1.0 / (1.0 + math.exp(-float(flag.reshape(-1)[0]))) < 0.5:
            state.landmarks = None
            return None
        lm = raw.reshape(468, 3).astype(np.float32) / 192.0
        lm = ops.project_points(lm, roi)
        state.landmarks = lm
        return lm
