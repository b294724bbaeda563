"""Score calibration: temperature scaling of a model's logits.

A model's softmax probabilities are often over- or under-confident. Temperature scaling
(Guo et al. 2017) divides the logits by one number T, fitted on held-out validation clips
to minimise the negative log-likelihood (NLL); T > 1 softens an over-confident model,
T < 1 sharpens an under-confident one. The top-1 label never changes.

``signrt export --calib-data DIR`` fits T here and stores it in the model metadata
(``signrt.model`` → ``calibration``, :func:`signrt.runtime.model.check_calibration`); the
recognizer divides the logits by it before the softmax, so predictions and stream
thresholds act on calibrated probabilities.

* :func:`fit_temperature`: the T in [0.05, 20] minimising the NLL. The NLL is convex in 1/T,
  so a golden-section search on log T finds the optimum to 1e-4 relative.
* :func:`nll`, :func:`expected_calibration_error` (15 equal-width bins of the top-1
  probability): the figures reported before and after.
"""

from __future__ import annotations

import itertools
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from ..errors import DataError, ShapeError

__all__ = [
    "T_MAX",
    "T_MIN",
    "calibration_report",
    "check_logits",
    "energy_scores",
    "expected_calibration_error",
    "fit_temperature",
    "log_softmax",
    "nll",
]

F64 = npt.NDArray[np.float64]
T_MIN: Final = 0.05
T_MAX: Final = 20.0


def check_logits(logits: npt.ArrayLike) -> F64:
    """Logits as (N, K) float64, K >= 1, all finite (else ShapeError / DataError)."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ShapeError(f"logits must be (N, K) with K >= 1, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise DataError("logits must be finite")
    return z


def energy_scores(logits: npt.ArrayLike, temperature: float = 1.0) -> F64:
    """The negative free energy ``T * logsumexp(logits / T)`` of each row, in float64.

    Higher means more like the training data (Liu et al. 2020); it is what a stream with
    ``score="energy"`` thresholds.

    Args:
        logits: (B, K) finite logits.
        temperature: T (the model's calibration temperature).

    Returns:
        (B,) float64 energies.

    Raises:
        ShapeError: If ``logits`` is not 2-D with at least one class.
        DataError: If a logit is not finite.
    """
    z = check_logits(logits) / float(temperature)  # (B, K)
    m = z.max(axis=1)  # (B,)
    out: F64 = temperature * (m + np.log(np.exp(z - m[:, None]).sum(axis=1)))
    return out


def log_softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> F64:
    """Row-wise log-softmax of ``logits / temperature``; (N, K) float64."""
    z = check_logits(logits) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]


def nll(logits: npt.ArrayLike, labels: npt.ArrayLike, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(logits / T)``."""
    lp = log_softmax(logits, temperature)
    y = np.asarray(labels, dtype=np.intp)
    if y.shape != (lp.shape[0],) or (y.size and (y.min() < 0 or y.max() >= lp.shape[1])):
        raise ShapeError(f"labels must be ({lp.shape[0]},) class indices < {lp.shape[1]}")
    return float(-lp[np.arange(y.size), y].mean()) if y.size else 0.0


def fit_temperature(logits: npt.ArrayLike, labels: npt.ArrayLike, *, tol: float = 1e-4) -> float:
    """The temperature minimising the validation NLL (temperature scaling).

    Args:
        logits: (N, K) validation logits.
        labels: (N,) true class indices.
        tol: Relative precision of T.

    Returns:
        T in [0.05, 20] (the bounds when the optimum lies beyond them; 1.0 for no rows).

    Raises:
        ShapeError: If logits are not (N, K) or labels not (N,) class indices.
        DataError: If a logit is not finite.
    """
    z = check_logits(logits)
    y = np.asarray(labels, dtype=np.intp)
    nll(z, y)  # validates the labels' shape and range
    if y.size == 0:
        return 1.0
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(z, y, math.exp(c)), nll(z, y, math.exp(d))
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(z, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(z, y, math.exp(d))
    # the optimum may lie on a bound (e.g. separable data wants T -> 0)
    cands = (math.exp((a + b) / 2.0), T_MIN, T_MAX)
    return float(min(cands, key=lambda t: nll(z, y, t)))


def expected_calibration_error(
    logits: npt.ArrayLike, labels: npt.ArrayLike, temperature: float = 1.0, bins: int = 15
) -> float:
    """Expected calibration error of the top-1 probability (equal-width bins)."""
    p = np.exp(log_softmax(logits, temperature))
    y = np.asarray(labels, dtype=np.intp)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = (pred == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += float(sel.mean()) * abs(float(correct[sel].mean()) - float(conf[sel].mean()))
    return ece


def calibration_report(
    logits: npt.ArrayLike, labels: npt.ArrayLike, temperature: float
) -> dict[str, float | int]:
    """Clips, top-1, NLL and ECE at T = 1 and at ``temperature`` (JSON-ready)."""
    z = check_logits(logits)
    y = np.asarray(labels, dtype=np.intp)
    return {
        "clips": int(y.size),
        "top1": float((z.argmax(axis=1) == y).mean()) if y.size else 0.0,
        "nll_before": round(nll(z, y), 5),
        "nll_after": round(nll(z, y, temperature), 5),
        "ece_before": round(expected_calibration_error(z, y), 5),
        "ece_after": round(expected_calibration_error(z, y, temperature), 5),
    }
