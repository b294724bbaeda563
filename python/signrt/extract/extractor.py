"""MediaPipe Holistic landmark extractors: one image in, one (543, 3) holistic frame out.

Two backends share the :class:`Extractor` interface:

* :class:`HolisticExtractor` runs MediaPipe's legacy Holistic solution (``mediapipe==0.10.21``,
  the last release that bundles its models, so it works offline).
* :class:`TasksHolisticExtractor` runs the Tasks ``HolisticLandmarker`` from a ``.task`` model
  file that the user downloaded (newer MediaPipe has only this API).

:func:`create_extractor` picks the backend: a ``.task`` path selects the Tasks backend,
nothing selects the legacy one. Both write the face without irises (468 points), NaN for any
part that was not found, in the canonical layout of :mod:`signrt.layouts`.

MediaPipe and OpenCV are imported when an extractor is created, never on ``import signrt``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .._closing import Closing
from ..errors import ExtractorError
from ..layouts import FACE, LEFT_HAND, NUM_LANDMARKS, POSE, RIGHT_HAND

__all__ = [
    "Extractor",
    "ExtractorError",
    "HolisticExtractor",
    "TasksHolisticExtractor",
    "create_extractor",
    "empty_frame",
    "landmarks_to_frame",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

_INSTALL_HINT = (
    "install the camera extra: pip install 'signrt[camera]' "
    "(mediapipe==0.10.21, opencv-python-headless, numpy<2)"
)


def empty_frame() -> FloatArray:
    """Return a (543, 3) float32 frame with every landmark missing (NaN)."""
    return np.full((NUM_LANDMARKS, 3), np.nan, dtype=np.float32)


def _points(landmarks: Any) -> Sequence[Any]:
    """Return the landmark sequence of a legacy proto list or a Tasks list (or empty)."""
    if landmarks is None:
        return ()
    inner = getattr(landmarks, "landmark", None)
    return inner if inner is not None else landmarks  # type: ignore[no-any-return]


def _fill(out: FloatArray, start: int, count: int, landmarks: Any) -> bool:
    pts = _points(landmarks)
    if len(pts) < count:
        return False
    out[start : start + count] = [(p.x, p.y, p.z) for p in pts[:count]]
    return True


def landmarks_to_frame(
    face: Any = None, left_hand: Any = None, pose: Any = None, right_hand: Any = None
) -> FloatArray:
    """Assemble MediaPipe landmark lists into one holistic-543 frame.

    Each argument is a legacy ``NormalizedLandmarkList`` (with ``.landmark``), a list of
    objects with ``x``, ``y``, ``z`` (Tasks API), or ``None`` when the part was not found.
    Face lists with irises (478 points) are cut to the 468-point mesh. A part with fewer
    points than its layout range stays NaN.

    Args:
        face: Face mesh landmarks.
        left_hand: Left-hand landmarks (the subject's left hand, MediaPipe's convention).
        pose: Pose landmarks (33).
        right_hand: Right-hand landmarks.

    Returns:
        A (543, 3) float32 frame.
    """
    out = empty_frame()
    _fill(out, FACE.start, len(FACE), face)
    _fill(out, LEFT_HAND.start, len(LEFT_HAND), left_hand)
    _fill(out, POSE.start, len(POSE), pose)
    _fill(out, RIGHT_HAND.start, len(RIGHT_HAND), right_hand)
    return out


def _as_rgb(image: npt.ArrayLike, bgr: bool) -> npt.NDArray[np.uint8]:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ExtractorError(
            f"expected an image of shape (H, W, 3) (RGB or BGR), got {img.shape}; "
            "pass a colour image as a NumPy array"
        )
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.size and float(np.nanmax(img)) <= 1.0:
            img = img * 255.0
        img = np.clip(img, 0, 255).astype(np.uint8)
    img = img[:, :, :3]
    if bgr:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


@runtime_checkable
class Extractor(Protocol):
    """What every landmark extractor offers.

    ``process`` takes one image and returns one (543, 3) float32 frame, NaN where a part
    was not found. Extractors are context managers; ``close`` frees the MediaPipe graph.
    """

    backend: str

    def process(
        self, image: npt.ArrayLike, *, timestamp_ms: int | None = None, bgr: bool = False
    ) -> FloatArray:
        """Extract the landmarks of one image."""
        ...

    def close(self) -> None:
        """Release the underlying graph."""
        ...

    def __enter__(self) -> Extractor:
        """Return self."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the extractor."""
        ...


class _Base(Closing):
    backend = "base"
    #: The MediaPipe graph of the backend; None once closed.
    _graph: Any = None


    def close(self) -> None:
        """Release the underlying MediaPipe graph (idempotent)."""
        graph, self._graph = self._graph, None
        if graph is not None:
            graph.close()

    def process(
        self, image: npt.ArrayLike, *, timestamp_ms: int | None = None, bgr: bool = False
    ) -> FloatArray:
        """Extract the landmarks of one image.

        Args:
            image: (H, W, 3) uint8 image (float images in 0..1 are accepted).
            timestamp_ms: Frame time in ms, for backends that track over time (the Tasks
                backend in VIDEO mode; made strictly increasing there); a monotonic clock
                when ``None``. The legacy graph keeps its own clock and ignores it.
            bgr: Whether the image is BGR (OpenCV order) rather than RGB.

        Returns:
            A (543, 3) float32 frame, NaN for parts not found.

        Raises:
            ExtractorError: If the extractor is closed or MediaPipe fails on the image.
        """
        if self._graph is None:
            raise ExtractorError("this extractor is closed; create a new one")
        rgb = _as_rgb(image, bgr)
        try:
            res = self._detect(rgb, timestamp_ms)
        except Exception as exc:
            raise ExtractorError(f"{self._failure_name} failed on an image: {exc}") from exc
        return landmarks_to_frame(
            res.face_landmarks, res.left_hand_landmarks, res.pose_landmarks,
            res.right_hand_landmarks,
        )  # fmt: skip

    #: How error messages name the MediaPipe graph.
    _failure_name = "MediaPipe"

    def _detect(self, rgb: npt.NDArray[np.uint8], timestamp_ms: int | None) -> Any:
        """Run the graph on an RGB image; the result has the four ``*_landmarks`` fields."""
        raise NotImplementedError

    def process_many(self, images: Iterable[npt.ArrayLike], *, bgr: bool = False) -> FloatArray:
        """Extract a clip from a sequence of images, in order.

        Args:
            images: Images of one video, in order.
            bgr: Whether the images are BGR (OpenCV) rather than RGB.

        Returns:
            (T, 543, 3) float32.
        """
        frames = [self.process(img, bgr=bgr) for img in images]
        if not frames:
            return np.zeros((0, NUM_LANDMARKS, 3), dtype=np.float32)
        return np.stack(frames)


def _import_mediapipe() -> Any:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise ExtractorError(f"MediaPipe is not installed ({exc}); {_INSTALL_HINT}") from exc
    return mp


_POSE_MODEL = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}


class HolisticExtractor(_Base):
    """Landmarks from MediaPipe's legacy Holistic solution (``mediapipe==0.10.21``).

    Args:
        static_image_mode: ``True`` treats every image on its own (still images, image
            folders); ``False`` tracks across frames of one video (faster, smoother).
        model_complexity: Pose model 0 (lite), 1 (full) or 2 (heavy). Only 1 is bundled in
            the wheel; 0 and 2 are downloaded by MediaPipe on first use, so they need network
            access once (the file is then cached in the MediaPipe package folder).
        num_threads: Threads of each XNNPACK inference node (pose, face, hands);
            ``None`` keeps MediaPipe's default.
        min_detection_confidence: Pose detection threshold.
        min_tracking_confidence: Landmark tracking threshold (video mode).
        smooth_landmarks: Temporal smoothing in video mode.

    Raises:
        ExtractorError: If MediaPipe is missing or too new (no legacy solutions), or the pose
            model for ``model_complexity`` is neither bundled nor downloadable.
    """

    backend = "holistic-legacy"

    def __init__(
        self,
        *,
        static_image_mode: bool = False,
        model_complexity: int = 1,
        num_threads: int | None = None,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        smooth_landmarks: bool = True,
    ) -> None:
        if model_complexity not in _POSE_MODEL:
            raise ExtractorError(f"model_complexity must be 0, 1 or 2, got {model_complexity}")
        if num_threads is not None and num_threads < 1:
            raise ExtractorError(f"num_threads must be >= 1 or None, got {num_threads}")
        mp = _import_mediapipe()
        solutions = getattr(mp, "solutions", None)
        if solutions is None or not hasattr(solutions, "holistic"):
            raise ExtractorError(
                f"mediapipe {getattr(mp, '__version__', '?')} has no legacy Holistic solution; "
                "install mediapipe==0.10.21, or pass a HolisticLandmarker .task model "
                "(--landmarker PATH.task) to use the Tasks backend"
            )
        self.static_image_mode = static_image_mode
        self.model_complexity = model_complexity
        self.num_threads = num_threads
        holistic_module = solutions.holistic
        self._check_pose_model(mp, model_complexity)
        threads = num_threads

        class _Holistic(holistic_module.Holistic):  # type: ignore[misc,name-defined]
            def _modify_calculator_options(self, proto: Any, params: Any) -> None:
                if threads is not None:
                    _set_threads(proto, threads)
                super()._modify_calculator_options(proto, params)

        t0 = time.perf_counter()
        try:
            self._graph = _Holistic(
                static_image_mode=static_image_mode,
                model_complexity=model_complexity,
                smooth_landmarks=smooth_landmarks,
                refine_face_landmarks=False,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
        except Exception as exc:
            raise ExtractorError(f"could not start MediaPipe Holistic: {exc}") from exc
        log.debug(
            "Holistic ready in %.0f ms (static=%s, complexity=%d, threads=%s)",
            (time.perf_counter() - t0) * 1e3,
            static_image_mode,
            model_complexity,
            num_threads,
        )

    @staticmethod
    def _check_pose_model(mp: Any, complexity: int) -> None:
        root = Path(mp.__file__).parent / "modules" / "pose_landmark"
        model = root / _POSE_MODEL[complexity]
        if complexity != 1 and not model.exists():
            log.warning(
                "pose model %s is not bundled; MediaPipe will try to download it now "
                "(use model_complexity=1 to stay offline)",
                model.name,
            )

    _failure_name = "MediaPipe Holistic"

    def _detect(self, rgb: npt.NDArray[np.uint8], timestamp_ms: int | None) -> Any:
        return self._graph.process(rgb)  # the legacy graph keeps its own clock



def _set_threads(proto: Any, threads: int) -> None:
    """Set the XNNPACK thread count of every inference node of an expanded Holistic graph."""
    try:
        from mediapipe.calculators.tensor import inference_calculator_pb2

        ext = inference_calculator_pb2.InferenceCalculatorOptions
        for node in proto.node:
            for any_opt in node.node_options:
                if any_opt.Is(ext.DESCRIPTOR):
                    opts = ext()
                    any_opt.Unpack(opts)
                    if opts.delegate.HasField("xnnpack"):
                        opts.delegate.xnnpack.num_threads = threads
                        any_opt.Pack(opts)
    except Exception as exc:  # pragma: no cover - depends on MediaPipe internals
        log.warning("could not set MediaPipe thread count (%s); using its default", exc)


class TasksHolisticExtractor(_Base):
    """Landmarks from MediaPipe's Tasks ``HolisticLandmarker`` and a ``.task`` model file.

    Args:
        model_path: Path to a ``holistic_landmarker.task`` model (download it from the
            MediaPipe model page; signrt does not fetch models).
        static_image_mode: ``True`` runs in IMAGE mode; ``False`` in VIDEO mode, which needs
            increasing timestamps (taken from ``timestamp_ms`` or a monotonic clock).
        min_detection_confidence: Face and pose detection threshold.
        min_tracking_confidence: Landmark confidence threshold.
        num_threads: Accepted for interface parity; the Tasks API chooses its own threads.

    Raises:
        ExtractorError: If the model file is missing or MediaPipe has no HolisticLandmarker.
    """

    backend = "holistic-tasks"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        static_image_mode: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        num_threads: int | None = None,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ExtractorError(
                f"HolisticLandmarker model {path} not found; download "
                "holistic_landmarker.task from the MediaPipe models page and pass its path"
            )
        mp = _import_mediapipe()
        vision = getattr(getattr(mp, "tasks", None), "vision", None)
        if vision is None or not hasattr(vision, "HolisticLandmarker"):
            raise ExtractorError(
                f"mediapipe {getattr(mp, '__version__', '?')} has no Tasks HolisticLandmarker; "
                "install mediapipe>=0.10.14"
            )
        if num_threads is not None:
            log.debug("num_threads is not configurable with the Tasks backend; ignored")
        self.static_image_mode = static_image_mode
        self._mp = mp
        mode = vision.RunningMode.IMAGE if static_image_mode else vision.RunningMode.VIDEO
        options = vision.HolisticLandmarkerOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=str(path)),
            running_mode=mode,
            min_face_detection_confidence=min_detection_confidence,
            min_pose_detection_confidence=min_detection_confidence,
            min_face_landmarks_confidence=min_tracking_confidence,
            min_pose_landmarks_confidence=min_tracking_confidence,
            min_hand_landmarks_confidence=min_tracking_confidence,
        )
        try:
            self._graph = vision.HolisticLandmarker.create_from_options(options)
        except Exception as exc:
            raise ExtractorError(f"could not load HolisticLandmarker from {path}: {exc}") from exc
        self._last_ts = -1
        self._t0 = time.monotonic()

    _failure_name = "HolisticLandmarker"

    def _detect(self, rgb: npt.NDArray[np.uint8], timestamp_ms: int | None) -> Any:
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        if self.static_image_mode:
            return self._graph.detect(mp_image)
        ts = (
            int(timestamp_ms)
            if timestamp_ms is not None
            else int((time.monotonic() - self._t0) * 1e3)
        )
        ts = max(ts, self._last_ts + 1)
        self._last_ts = ts
        return self._graph.detect_for_video(mp_image, ts)



def create_extractor(
    model: str | os.PathLike[str] | None = None,
    *,
    static_image_mode: bool = False,
    model_complexity: int = 1,
    num_threads: int | None = None,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    device: str = "auto",
) -> Extractor:
    """Create the extractor for ``model``: a ``.task`` file selects the Tasks backend.

    Args:
        model: ``"onnx"`` (or ``"onnx:DEVICE"``) for the bundled Holistic models on ONNX
            Runtime (no MediaPipe needed), ``"legacy"`` for MediaPipe's legacy Holistic
            solution, or the path of a ``HolisticLandmarker`` ``.task`` model. ``None``
            picks ``legacy`` where MediaPipe is installed and ``onnx`` elsewhere.
        static_image_mode: Treat images independently (True) or as a video (False).
        model_complexity: Pose model complexity (legacy backend only).
        num_threads: Inference threads (legacy backend only).
        min_detection_confidence: Detection threshold.
        min_tracking_confidence: Tracking threshold.
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt`` (onnx backend only; a device in
            ``"onnx:DEVICE"`` takes precedence).

    Returns:
        An object satisfying :class:`Extractor`.

    Raises:
        ExtractorError: For an unknown model argument or a backend that cannot start.
    """
    name = "" if model is None else str(model)
    if name == "":
        import importlib.util

        name = "legacy" if importlib.util.find_spec("mediapipe") is not None else "onnx"
    if name == "onnx" or name.startswith("onnx:"):
        from .onnx_holistic import OnnxHolisticExtractor

        if model_complexity != 1:
            raise ExtractorError(
                f"the onnx landmarker bundles the full pose model only (model_complexity 1), "
                f"got {model_complexity}; use --landmarker legacy for the lite or heavy model"
            )

        return OnnxHolisticExtractor(
            static_image_mode=static_image_mode,
            device=name.partition(":")[2] or device,
            num_threads=num_threads,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
    if name in ("legacy", "holistic"):
        return HolisticExtractor(
            static_image_mode=static_image_mode,
            model_complexity=model_complexity,
            num_threads=num_threads,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
    if name.endswith(".task"):
        return TasksHolisticExtractor(
            name,
            static_image_mode=static_image_mode,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
            num_threads=num_threads,
        )
    raise ExtractorError(
        f"unknown landmark model {model!r}: use 'onnx' (bundled models on ONNX Runtime), "
        "'legacy' (MediaPipe 0.10.21 Holistic) or the path of a HolisticLandmarker .task file"
    )
