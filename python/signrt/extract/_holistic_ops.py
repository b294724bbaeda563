"""Geometry and tensor post-processing of MediaPipe's legacy Holistic graph, in NumPy/OpenCV.

Each function reproduces one calculator of ``holistic_landmark_cpu`` (mediapipe 0.10.21)
with the options that graph sets; the names in the docstrings are those calculators.
Coordinates follow MediaPipe: a :class:`Rect` is normalised to the image (centre, size,
rotation in radians, clockwise in image space); landmarks are (N, 3) float arrays of
normalised x, y and z (z in units of the image width, like x).

Nothing here imports MediaPipe; OpenCV is imported by :func:`crop`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Rect:
    """A rotated rectangle in normalised image coordinates (MediaPipe's NormalizedRect)."""

    xc: float
    yc: float
    w: float
    h: float
    rot: float = 0.0


def normalize_radians(angle: float) -> float:
    """Map an angle to [-pi, pi)."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def _rotation(x0: float, y0: float, x1: float, y1: float, target: float) -> float:
    """Rotation that turns the vector (x0, y0) -> (x1, y1) (pixels) to ``target`` radians."""
    return normalize_radians(target - math.atan2(-(y1 - y0), x1 - x0))


# ----------------------------------------------------------------------------- anchors
def ssd_anchors(size: int, strides: tuple[int, ...], offset: float = 0.5) -> F32:
    """Anchor centres of SsdAnchorsCalculator with ``fixed_anchor_size`` (one aspect ratio).

    Each layer has two anchors per cell (aspect ratio 1 and the interpolated scale); layers
    of equal stride share the feature map, so their anchors are emitted together per cell.

    Args:
        size: Square input size of the detector (224 pose, 128 face).
        strides: Stride of each layer.
        offset: Anchor offset within a cell.

    Returns:
        (N, 2) float32 anchor centres (x, y), normalised.
    """
    out: list[F32] = []
    layer = 0
    while layer < len(strides):
        last = layer
        per_cell = 0
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 2
            last += 1
        fm = math.ceil(size / strides[layer])
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        centres = np.stack([(xs + offset) / fm, (ys + offset) / fm], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0).astype(np.float32))
        layer = last
    return np.concatenate(out)


# ----------------------------------------------------------------------------- detections
@dataclass(frozen=True)
class Detections:
    """Decoded detections: boxes (M, 4) xmin, ymin, xmax, ymax; keypoints (M, K, 2); scores."""

    boxes: F32
    keypoints: F32
    scores: F32

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def decode_detections(
    raw_boxes: F32,
    raw_scores: F32,
    anchors: F32,
    scale: float,
    num_keypoints: int,
    min_score: float = 0.5,
) -> Detections:
    """TensorsToDetectionsCalculator (x-first box order, sigmoid scores clipped at +-100).

    Args:
        raw_boxes: (N, 4 + 2K) regressor output of one image.
        raw_scores: (N,) or (N, 1) logits.
        anchors: (N, 2) anchor centres.
        scale: Input size of the detector (x, y, w and h scale).
        num_keypoints: K.
        min_score: Score threshold.

    Returns:
        The detections above ``min_score``, normalised to the detector input.
    """
    logits = np.clip(raw_scores.reshape(-1).astype(np.float32), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    keep = scores >= min_score
    r = raw_boxes.reshape(raw_boxes.shape[-2], -1)[keep]  # (M, 4+2K)
    a = anchors[keep]  # (M, 2)
    xc = r[:, 0] / scale + a[:, 0]
    yc = r[:, 1] / scale + a[:, 1]
    w = r[:, 2] / scale
    h = r[:, 3] / scale
    boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)
    kp = r[:, 4 : 4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2) / scale + a[:, None, :]
    return Detections(boxes.astype(np.float32), kp.astype(np.float32), scores[keep])


def _iou(box: F32, others: F32) -> F32:
    ix0 = np.maximum(box[0], others[:, 0])
    iy0 = np.maximum(box[1], others[:, 1])
    ix1 = np.minimum(box[2], others[:, 2])
    iy1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0).astype(np.float32)


def weighted_nms(det: Detections, threshold: float = 0.3) -> Detections:
    """NonMaxSuppressionCalculator, WEIGHTED algorithm with IoU overlap.

    The strongest detection absorbs every remaining one whose IoU with it exceeds
    ``threshold``; its box and keypoints become the score-weighted mean of the group and
    it keeps its own score.
    """
    if len(det) == 0:
        return det
    order = np.argsort(-det.scores, kind="stable")
    boxes, kps, scores = [], [], []
    while order.size:
        top = order[0]
        sim = _iou(det.boxes[top], det.boxes[order])
        member = sim > threshold
        member[0] = True
        group = order[member]
        w = det.scores[group][:, None]
        total = float(w.sum())
        boxes.append((det.boxes[group] * w).sum(0) / total)
        kps.append((det.keypoints[group] * w[:, :, None]).sum(0) / total)
        scores.append(det.scores[top])
        order = order[~member]
    return Detections(
        np.asarray(boxes, np.float32), np.asarray(kps, np.float32), np.asarray(scores, np.float32)
    )


def remove_letterbox_points(points: F32, pad: tuple[float, float, float, float]) -> F32:
    """Letterbox removal (LandmarkLetterboxRemoval / DetectionLetterboxRemoval) of (..., 2+) points.

    ``pad`` is (left, top, right, bottom) as fractions of the tensor. z (column 2) is
    scaled like x.
    """
    left, top, right, bottom = pad
    sx = 1.0 - left - right
    sy = 1.0 - top - bottom
    out = points.astype(np.float32, copy=True)
    out[..., 0] = (points[..., 0] - left) / sx
    out[..., 1] = (points[..., 1] - top) / sy
    if points.shape[-1] > 2:
        out[..., 2] = points[..., 2] / sx
    return out


def project_points(points: F32, roi: Rect) -> F32:
    """LandmarkProjectionCalculator: points normalised to ``roi`` -> image coordinates.

    z (column 2, if present) is multiplied by the ROI width, like MediaPipe.
    """
    x = points[..., 0] - 0.5
    y = points[..., 1] - 0.5
    c, s = math.cos(roi.rot), math.sin(roi.rot)
    out = points.astype(np.float32, copy=True)
    out[..., 0] = (c * x - s * y) * roi.w + roi.xc
    out[..., 1] = (s * x + c * y) * roi.h + roi.yc
    if points.shape[-1] > 2:
        out[..., 2] = points[..., 2] * roi.w
    return out


def project_with_matrix(points: F32, roi: Rect, size: tuple[int, int]) -> F32:
    """DetectionProjectionCalculator: (..., 2) points on the (padded) ``roi`` crop -> image.

    The crop matrix of ImageToTensorCalculator maps the unit square of the crop onto the
    rotated ROI; this applies it to normalised points.
    """
    w, h = size
    c, s = math.cos(roi.rot), math.sin(roi.rot)
    u = (points[..., 0] - 0.5) * roi.w * w
    v = (points[..., 1] - 0.5) * roi.h * h
    out = np.empty_like(points, dtype=np.float32)
    out[..., 0] = (c * u - s * v + roi.xc * w) / w
    out[..., 1] = (s * u + c * v + roi.yc * h) / h
    return out


# ----------------------------------------------------------------------------- rects
def transform_rect(r: Rect, size: tuple[int, int], scale: float, shift_y: float = 0.0) -> Rect:
    """RectTransformationCalculator with ``square_long`` (shift_x is 0 in every use)."""
    w_img, h_img = size
    xc, yc = r.xc, r.yc
    if shift_y:
        if r.rot == 0.0:
            yc += r.h * shift_y
        else:
            xc += (-h_img * r.h * shift_y * math.sin(r.rot)) / w_img
            yc += (h_img * r.h * shift_y * math.cos(r.rot)) / h_img
    long_side = max(r.w * w_img, r.h * h_img)
    return Rect(
        xc, yc, long_side / w_img * scale, long_side / h_img * scale, normalize_radians(r.rot)
    )


def alignment_rect(start: F32, end: F32, size: tuple[int, int], target_deg: float) -> Rect:
    """AlignmentPointsRectsCalculator: centre at ``start``, side twice |start - end|."""
    w, h = size
    x0, y0 = float(start[0]) * w, float(start[1]) * h
    x1, y1 = float(end[0]) * w, float(end[1]) * h
    box = math.hypot(x1 - x0, y1 - y0) * 2.0
    return Rect(
        x0 / w, y0 / h, box / w, box / h, _rotation(x0, y0, x1, y1, math.radians(target_deg))
    )


def bbox_rect(points: F32, size: tuple[int, int], start: int, end: int, target_deg: float) -> Rect:
    """LandmarksToDetection + DetectionsToRectsCalculator: the points' bounding box.

    The box is rotated so that ``points[start] -> points[end]`` points at ``target_deg``.
    """
    w, h = size
    x0, y0 = float(points[start, 0]) * w, float(points[start, 1]) * h
    x1, y1 = float(points[end, 0]) * w, float(points[end, 1]) * h
    lo = points[:, :2].min(axis=0)
    hi = points[:, :2].max(axis=0)
    return Rect(
        float(lo[0] + hi[0]) / 2,
        float(lo[1] + hi[1]) / 2,
        float(hi[0] - lo[0]),
        float(hi[1] - lo[1]),
        _rotation(x0, y0, x1, y1, math.radians(target_deg)),
    )


def hand_rect_from_pose(wrist: F32, pinky: F32, index: F32, size: tuple[int, int]) -> Rect:
    """HandDetectionsFromPoseToRectsCalculator: centre on the estimated middle finger."""
    w, h = size
    xw, yw = float(wrist[0]) * w, float(wrist[1]) * h
    xm = (2.0 * float(index[0]) + float(pinky[0])) / 3.0 * w
    ym = (2.0 * float(index[1]) + float(pinky[1])) / 3.0 * h
    box = math.hypot(xm - xw, ym - yw) * 2.0
    return Rect(xm / w, ym / h, box / w, box / h, _rotation(xw, yw, xm, ym, math.pi / 2))


_PALM = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])


def hand_rect_from_landmarks(lm: F32, size: tuple[int, int]) -> Rect:
    """HandLandmarksToRectCalculator on 21 hand landmarks (palm subset, rotated box)."""
    w, h = size
    p = lm[_PALM, :2].astype(np.float64)
    x0, y0 = p[0, 0] * w, p[0, 1] * h
    x1 = ((p[4, 0] + p[8, 0]) / 2 + p[6, 0]) / 2 * w
    y1 = ((p[4, 1] + p[8, 1]) / 2 + p[6, 1]) / 2 * h
    rot = _rotation(x0, y0, x1, y1, math.pi / 2)
    rev = normalize_radians(-rot)
    centre = (p.max(axis=0) + p.min(axis=0)) / 2
    ox = (p[:, 0] - centre[0]) * w
    oy = (p[:, 1] - centre[1]) * h
    px = ox * math.cos(rev) - oy * math.sin(rev)
    py = ox * math.sin(rev) + oy * math.cos(rev)
    pcx = (px.max() + px.min()) / 2
    pcy = (py.max() + py.min()) / 2
    cx = pcx * math.cos(rot) - pcy * math.sin(rot) + w * centre[0]
    cy = pcx * math.sin(rot) + pcy * math.cos(rot) + h * centre[1]
    return Rect(cx / w, cy / h, (px.max() - px.min()) / w, (py.max() - py.min()) / h, rot)


def keypoints_rect(points: F32, size: tuple[int, int], start: int, end: int) -> Rect:
    """DetectionsToRectsCalculator in USE_KEYPOINTS mode (face detection -> face ROI)."""
    return bbox_rect(points, size, start, end, 0.0)


def roi_tracking(
    prev_landmarks: F32 | None,
    prev_rect: Rect | None,
    recrop: Rect,
    size: tuple[int, int],
    rotation_deg: float,
    translation: float,
    scale: float,
    margin: float,
) -> Rect:
    """RoiTrackingCalculator: keep the previous ROI while it agrees with the re-crop ROI."""
    if prev_rect is None or prev_landmarks is None:
        return recrop
    w, h = size
    rot = -recrop.rot
    c, s = math.cos(rot), math.sin(rot)

    def rotated(xc: float, yc: float) -> tuple[float, float]:
        return xc * w * c - yc * h * s, xc * w * s + yc * h * c

    px, py = rotated(prev_rect.xc, prev_rect.yc)
    rx, ry = rotated(recrop.xc, recrop.yc)
    rw, rh = recrop.w * w, recrop.h * h
    diff = math.degrees(prev_rect.rot) - math.degrees(recrop.rot)
    if diff > 180.0:
        diff -= 360.0
    if diff < -180.0:
        diff += 360.0
    keep = abs(diff) <= rotation_deg
    keep &= abs(px - rx) <= rw * translation and abs(py - ry) <= rh * translation
    keep &= abs(prev_rect.w * w - rw) <= rw * scale and abs(prev_rect.h * h - rh) <= rh * scale
    mw, mh = rw * (1.0 + margin), rh * (1.0 + margin)
    lx = prev_landmarks[:, 0] * w * c - prev_landmarks[:, 1] * h * s
    ly = prev_landmarks[:, 0] * w * s + prev_landmarks[:, 1] * h * c
    inside = (rx - mw / 2 < lx) & (lx < rx + mw / 2) & (ry - mh / 2 < ly) & (ly < ry + mh / 2)
    keep &= bool(inside.all())
    return prev_rect if keep else recrop


# ----------------------------------------------------------------------------- crops
def pad_rect(
    r: Rect, size: tuple[int, int], out_w: int, out_h: int
) -> tuple[Rect, tuple[float, float, float, float]]:
    """ImageToTensorCalculator ``keep_aspect_ratio``: grow the ROI to the tensor's aspect.

    Returns:
        The padded ROI and the letterbox padding (left, top, right, bottom).
    """
    w_img, h_img = size
    rw, rh = r.w * w_img, r.h * h_img
    tensor_aspect = out_h / out_w
    roi_aspect = rh / rw
    if tensor_aspect > roi_aspect:
        new_w, new_h = rw, rw * tensor_aspect
        v = (1.0 - roi_aspect / tensor_aspect) / 2.0
        pad = (0.0, v, 0.0, v)
    else:
        new_w, new_h = rh / tensor_aspect, rh
        hz = (1.0 - tensor_aspect / roi_aspect) / 2.0
        pad = (hz, 0.0, hz, 0.0)
    return replace(r, w=new_w / w_img, h=new_h / h_img), pad


def crop(
    image: npt.NDArray[np.uint8],
    r: Rect,
    out_w: int,
    out_h: int,
    *,
    zero_border: bool,
    value_range: tuple[float, float],
    out: F32 | None = None,
    bgr: bool = False,
) -> F32:
    """Warp the rotated ROI ``r`` (already padded) into an (out_h, out_w, 3) float tensor.

    Like ImageToTensorCalculator on CPU: a perspective warp of the ROI's corners onto the
    tensor, bilinear, border zero or replicate, then an affine map of 0..255 to
    ``value_range``. With ``bgr`` the image is in OpenCV's BGR order and the channels of
    the (small) crop are reversed to RGB, so that the whole frame is never converted.
    """
    import cv2

    h_img, w_img = image.shape[:2]
    box = cv2.boxPoints(
        ((r.xc * w_img, r.yc * h_img), (r.w * w_img, r.h * h_img), math.degrees(r.rot))
    )
    dst = np.array([[0, out_h], [0, 0], [out_w, 0], [out_w, out_h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(box.astype(np.float32), dst)
    border = cv2.BORDER_CONSTANT if zero_border else cv2.BORDER_REPLICATE
    warped = cv2.warpPerspective(
        image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0)
    )
    lo, hi = value_range
    res = out if out is not None else np.empty((out_h, out_w, 3), dtype=np.float32)
    if bgr:
        warped = cv2.cvtColor(warped, cv2.COLOR_BGR2RGB)  # the small uint8 crop only
    np.multiply(warped, np.float32((hi - lo) / 255.0), out=res, casting="unsafe")
    res += np.float32(lo)
    return res


# ----------------------------------------------------------------------------- landmarks
def refine_from_heatmap(lm: F32, heatmap: F32, kernel: int = 9, min_conf: float = 0.5) -> F32:
    """RefineLandmarksFromHeatmapCalculator: sigmoid-weighted mean in a window around each point.

    Args:
        lm: (N, >=2) landmarks normalised to the crop.
        heatmap: (H, W, N) logits.
        kernel: Window size.
        min_conf: A landmark is refined when the window's largest confidence reaches this.

    Returns:
        The landmarks with refined x, y.
    """
    hh, hw, n = heatmap.shape
    out = lm.copy()
    m = min(n, lm.shape[0])
    off = (kernel - 1) // 2
    cx = (lm[:m, 0] * hw).astype(np.int64)  # (m,) truncation toward zero, like int()
    cy = (lm[:m, 1] * hh).astype(np.int64)
    inside = (cx >= 0) & (cx < hw) & (cy >= 0) & (cy < hh)
    d = np.arange(-off, off + 1)
    rows = cy[:, None] + d  # (m, k)
    cols = cx[:, None] + d  # (m, k)
    valid = ((rows >= 0) & (rows < hh))[:, :, None] & ((cols >= 0) & (cols < hw))[:, None, :]
    r = np.clip(rows, 0, hh - 1)[:, :, None]
    c = np.clip(cols, 0, hw - 1)[:, None, :]
    logits = heatmap[r, c, np.arange(m)[:, None, None]].astype(np.float64)  # (m, k, k)
    with np.errstate(over="ignore"):  # exp(-x) of a very negative logit: inf, sigmoid 0
        conf = np.where(valid, 1.0 / (1.0 + np.exp(-logits)), 0.0)  # cells off the map: 0
    total = conf.sum(axis=(1, 2))  # (m,)
    refine = inside & (conf.max(axis=(1, 2)) >= min_conf) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    x = (cols[:, None, :] * conf).sum(axis=(1, 2)) / hw / safe
    y = (rows[:, :, None] * conf).sum(axis=(1, 2)) / hh / safe
    out[:m, 0] = np.where(refine, x, out[:m, 0])
    out[:m, 1] = np.where(refine, y, out[:m, 1])
    return out


class OneEuro:
    """LandmarksSmoothingCalculator's one-euro filter over (N, 3) landmarks in pixels.

    Args:
        min_cutoff: Minimum cutoff frequency.
        beta: Speed coefficient.
        derivate_cutoff: Cutoff of the derivative's low-pass.
        frequency: Initial frequency (before two timestamps are known).
    """

    def __init__(
        self, min_cutoff: float, beta: float, derivate_cutoff: float = 1.0, frequency: float = 30.0
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivate_cutoff = derivate_cutoff
        self.base_frequency = frequency
        self.reset()

    def reset(self) -> None:
        """Forget the history (the part was lost)."""
        self.frequency = self.base_frequency
        self.last_t: float | None = None
        self.x: F64 | None = None  # filtered value
        self.raw: F64 | None = None  # last raw value
        self.dx: F64 | None = None  # filtered derivative

    def _alpha(self, cutoff: Any) -> Any:
        te = 1.0 / self.frequency
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    def __call__(self, value: F64, t: float, value_scale: float) -> F64:
        """Filter one frame of values at time ``t`` (seconds)."""
        if self.last_t is not None and t <= self.last_t:
            return value
        if self.last_t is not None:
            self.frequency = 1.0 / (t - self.last_t)
        self.last_t = t
        if self.raw is not None:
            d = (value - self.raw) * value_scale * self.frequency
        else:
            d = np.zeros_like(value)
        a_d = self._alpha(self.derivate_cutoff)
        self.dx = d if self.dx is None else a_d * d + (1.0 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff)
        self.x = value if self.x is None else a * value + (1.0 - a) * self.x
        self.raw = value
        return self.x


class LowPass:
    """VisibilitySmoothingCalculator's low-pass filter (alpha 0.1)."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.value: F64 | None = None

    def __call__(self, value: F64) -> F64:
        """Filter one frame."""
        self.value = (
            value if self.value is None else self.alpha * value + (1 - self.alpha) * self.value
        )
        return self.value

    def reset(self) -> None:
        """Forget the history."""
        self.value = None


def smooth_landmarks(
    f: OneEuro,
    lm: F32,
    size: tuple[int, int],
    scale_roi: Rect | None,
    t: float,
    disable_scaling: bool = False,
) -> F32:
    """Apply a one-euro filter to normalised landmarks the way LandmarksSmoothingCalculator does.

    The landmarks are converted to pixels (z like x), filtered with a value scale of
    1 / object size (the mean side of ``scale_roi`` in pixels), and converted back.
    """
    w, h = size
    px = lm[:, :3].astype(np.float64) * np.array([w, h, w])
    if disable_scaling or scale_roi is None:
        vs = 1.0
    else:
        obj = (scale_roi.w * w + scale_roi.h * h) / 2.0
        if obj < 1e-6:
            return lm
        vs = 1.0 / obj
    out = f(px, t, vs) / np.array([w, h, w])
    res = lm.copy()
    res[:, :3] = out.astype(np.float32)
    return res
